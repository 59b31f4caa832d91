"""A stored catalog's own calibration: refit it, read it, say what it is.

`refit_catalog_calibration` is the one entry point a background job calls when a catalog
changes (the enqueue goes where items and images are added or removed: see the README, "What
the numbers mean"); ``python -m catalog calibrate ID|--all`` calls it too. It scores the
catalog against itself (`matching.calibration`) and stores the result with the
catalog only if the catalog still holds what it was fitted on; items added meanwhile make it
stale (`RefitResult.stored` False): the kind's default stays in use, marked so, and the job
fits again. Never a silent mix of a calibration and a catalog it was not fitted on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from catalog.manifest import Manifest
from catalog.repository import SIGHTINGS_FOLDER, CatalogRepository, catalog_prefix
from core.errors import Conflict, NotFound
from core.images import decode_image
from matching.calibration.calibrate import fit_catalog_calibration
from matching.calibration.fit import fit_adjustment
from matching.calibration.pair_record import PairRecord, records_from_json, records_to_json
from matching.calibration.pairs import CatalogImage
from matching.calibration.record import (
    CatalogCalibration,
    FitOptions,
    calibration_digest,
    describe_state,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefitResult:
    """What `refit_catalog_calibration` did.

    Attributes:
        calibration: the fitted calibration (or the stored one when nothing changed).
        stored: whether it is now the catalog's (False: the catalog changed meanwhile).
        skipped: the stored calibration was already fitted on this content and kind
            calibration: nothing was fitted.
    """

    calibration: CatalogCalibration | None
    stored: bool
    skipped: bool = False


def stored_calibration(repository: CatalogRepository, manifest: Manifest):
    """The catalog's stored `CatalogCalibration`, or None (none, gone, or unreadable)."""
    blob = repository.load_calibration(manifest)
    if blob is None:
        return None
    try:
        return CatalogCalibration.from_json(blob)
    except ValueError as exc:
        log.warning("catalog %s: calibration blob unreadable (%s)", manifest.catalog_id, exc)
        return None


def calibration_state(repository: CatalogRepository, manifest: Manifest, pipeline) -> dict:
    """The JSON that `GET /v1/catalogs/<id>` shows as ``calibration``."""
    record = stored_calibration(repository, manifest)
    return describe_state(record, manifest.content_digest(), pipeline.calibration(manifest.kind))


def stored_images(repository: CatalogRepository, manifest: Manifest) -> list[CatalogImage]:
    """The catalog's images with their stored vectors and keypoints (pixels decoded lazily)."""
    from matching.features import LocalFeatures
    from matching.references import EMBEDDING, KEYPOINTS, read_vectors

    out = []
    for item in manifest.items.values():
        for image_id, record in item.images.items():
            if EMBEDDING not in record.feature_keys:
                continue
            vectors, tags = read_vectors(repository.get_feature(record.feature_keys[EMBEDDING]))
            features = None
            if KEYPOINTS in record.feature_keys:
                blob = repository.get_feature(record.feature_keys[KEYPOINTS])
                features = LocalFeatures.from_bytes(blob)

            def pixels(key: str = record.key):
                return decode_image(repository.store.get(key))

            out.append(CatalogImage(item.item_id, image_id, vectors, tags, features, pixels))
    return out


def refit_catalog_calibration(
    repository: CatalogRepository,
    pipeline,
    catalog_id: str,
    options: FitOptions = FitOptions(),
    progress: bool = False,
    reviewed: Sequence[PairRecord] | None = None,
    reviews_digest: str = "",
) -> RefitResult:
    """Fit a catalog's calibration on itself (and on ``reviewed``: records of its reviewed
    sightings, `sightings.pairs`) and store it (module docstring).

    The catalog's own pair records and the reviewed ones are kept beside it
    (`own_pairs_key`), so a refit that only new reviews call for scores no catalog image
    again, and a caller that does not read the sightings (``reviewed`` None: ``python -m
    catalog calibrate``) refits on the reviews of the last fit instead of dropping them.

    Raises:
        NotFound: no such catalog.
        Conflict: the catalog was indexed with another embedder than ``pipeline`` runs for
            its kind (re-index it first: its vectors are not this model's).
    """
    manifest = repository.get_manifest(catalog_id)
    mine = pipeline.embedder_for(manifest.kind).fingerprint
    if manifest.indexed_with_other(mine):
        raise Conflict(
            f"catalog {catalog_id!r} was indexed with embedder {manifest.embedder_fingerprint}, "
            f"this service runs {mine}: re-index it before calibrating"
        )
    digest = manifest.content_digest()
    current = stored_calibration(repository, manifest)
    base = pipeline.calibration(manifest.kind)
    side = _side(repository, catalog_id)
    if reviewed is None:
        reviewed = [r for r in side.get("reviewed") or () if r.true in (None, *manifest.items)]
        reviews_digest = str(side.get("reviews_digest") or "")
    if len(reviewed) < options.min_reviewed:
        reviewed, reviews_digest = (), ""  # too few to count: they do not call for a refit
    if (
        current is not None
        and current.content_digest == digest
        and current.base_digest == calibration_digest(base)
        and current.reviews_digest == reviews_digest
    ):
        return RefitResult(current, stored=True, skipped=True)
    same_content = (side.get("content_digest"), side.get("base_digest")) == (
        digest,
        calibration_digest(base),
    )
    own = side.get("records") if same_content else None
    if own is not None:
        cal = fit_adjustment(own, base, manifest.kind, digest, options, reviewed, reviews_digest)
    else:
        images = stored_images(repository, manifest)
        cal, own = fit_catalog_calibration(
            pipeline,
            images,
            manifest.kind,
            digest,
            options,
            progress=progress,
            reviewed=reviewed,
            reviews_digest=reviews_digest,
        )
    side = {"content_digest": digest, "base_digest": calibration_digest(base)}
    side |= {"records": records_to_json(own), "reviewed": records_to_json(reviewed)}
    side["reviews_digest"] = reviews_digest
    repository.store.put(own_pairs_key(catalog_id), json.dumps(side).encode())
    try:
        repository.save_calibration(catalog_id, cal.to_json(), digest, cal.status, cal.fitted_at)
    except Conflict as exc:
        if not (exc.details or {}).get("stale"):
            raise
        log.info("catalog %s changed during its calibration fit: fit again", catalog_id)
        return RefitResult(cal, stored=False)
    return RefitResult(cal, stored=True)


def own_pairs_key(catalog_id: str) -> str:
    """Where the catalog's own pair records of its last fit are kept (beside its sightings,
    which `CatalogRepository.gc_orphans` leaves alone)."""
    return f"{catalog_prefix(catalog_id)}{SIGHTINGS_FOLDER}/own-pairs.json"


def _side(repository: CatalogRepository, catalog_id: str) -> dict:
    """The pair records kept beside the catalog's last fit ({} when none or unreadable):
    its JSON with ``records`` and ``reviewed`` read as `PairRecord` s (None when absent)."""
    try:
        raw = json.loads(repository.store.get(own_pairs_key(catalog_id)))
    except (NotFound, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    try:
        for key in ("records", "reviewed"):
            if raw.get(key) is not None:
                raw[key] = records_from_json(raw[key])
    except (KeyError, TypeError, AttributeError) as exc:
        log.warning("catalog %s: own pairs unreadable (%r): scored again", catalog_id, exc)
        return {}
    return raw

"""Catalogs, items and images on top of a `Store`, safe under concurrent writers.

Consistency rules (the store is the source of truth; see DESIGN.md):

* Adding writes the data (image bytes, feature blobs) FIRST and the manifest LAST, so a
  manifest never names a missing object and a crash leaves only unreferenced data, which
  `CatalogRepository.gc_orphans` deletes once older than a grace period.
* Every manifest change is a compare-and-swap (`Store.put_if`) in a loop: read, apply the
  change to the fresh copy, write if nobody wrote in between, else back off and retry
  (bounded). Two concurrent writers therefore never lose each other's items, and a change
  that returned has been written.
* Removing (items, images, catalogs) changes the manifest FIRST and deletes data after, so
  nobody sees a manifest that points at deleted data; leftovers of a crash are orphans.

Keys: ``catalogs/<catalog_id>/manifest.json``,
``catalogs/<catalog_id>/images/<item_id>/<image_id>.<ext>``,
``catalogs/<catalog_id>/features/<image_id>.<kind>`` (kind e.g. ``emb.npy``, ``kp.npz``),
``catalogs/<catalog_id>/calibration/<digest>-<run>.json`` (the catalog's own calibration),
``catalogs/<catalog_id>/sightings/...`` (kept sightings: the sightings package; not named by
the manifest, so `gc_orphans` leaves them alone, and deleting the catalog deletes them).
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from catalog.manifest import KINDS, CalibrationRef, ImageRecord, Item, Manifest, utc_now
from catalog.store import Store
from core.errors import BadInput, Conflict, NotFound, StoreUnavailable
from core.retry import compare_and_swap

log = logging.getLogger(__name__)

T = TypeVar("T")

ROOT = "catalogs/"
_ID_ALPHABET = string.ascii_lowercase + string.digits  # safe on case-insensitive file systems
_ITEM_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_CATALOG_ID = re.compile(r"[a-z0-9]{1,64}")
CATALOG_ID, ITEM_ID = _CATALOG_ID, _ITEM_ID  # the id rules (the API's schemas use them)
_FEATURE_KIND = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "image/gif": "gif",
}
MAX_NAME_CHARS = 200
#: ``catalogs/<id>/sightings/``: kept sightings, not named by the manifest (never orphans).
SIGHTINGS_FOLDER = "sightings"


# --- keys -------------------------------------------------------------------------------
def new_id(length: int = 12) -> str:
    """A short random id of ``[a-z0-9]`` (12 chars: about 62 bits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def catalog_prefix(catalog_id: str) -> str:
    """``catalogs/<id>/``: every key of the catalog starts with it."""
    return f"{ROOT}{catalog_id}/"


def manifest_key(catalog_id: str) -> str:
    """``catalogs/<id>/manifest.json``."""
    return f"{catalog_prefix(catalog_id)}manifest.json"


def image_key(catalog_id: str, item_id: str, image_id: str, content_type: str) -> str:
    """``catalogs/<id>/images/<item>/<image>.<ext>`` (ext from the content type, else bin)."""
    ext = _EXTENSIONS.get(content_type.lower(), "bin")
    return f"{catalog_prefix(catalog_id)}images/{item_id}/{image_id}.{ext}"


def feature_key(catalog_id: str, image_id: str, kind: str) -> str:
    """``catalogs/<id>/features/<image>.<kind>``."""
    return f"{catalog_prefix(catalog_id)}features/{image_id}.{kind}"


def calibration_key(catalog_id: str, content_digest: str) -> str:
    """``catalogs/<id>/calibration/<digest>-<run>.json`` (a new key per fit)."""
    return f"{catalog_prefix(catalog_id)}calibration/{content_digest[:16]}-{new_id(6)}.json"


# --- inputs and results -----------------------------------------------------------------
@dataclass(frozen=True)
class Fingerprints:
    """Which models produced the features being added (None = not given, not checked)."""

    embedder: str | None = None  # e.g. "mobilenet_v2:<sha256 prefix>:224"
    verifier: str | None = None  # e.g. "aliked_lightglue:<sha256 prefix>"


class NewImage(NamedTuple):
    """One image to add; a plain 5-tuple in this order works too."""

    data: bytes  # encoded image as uploaded
    content_type: str  # e.g. image/jpeg
    width: int  # pixels
    height: int  # pixels
    features: Mapping[str, bytes]  # kind ("emb.npy", "kp.npz") -> opaque blob


@dataclass(frozen=True)
class AddedImages:
    """What `CatalogRepository.add_images` wrote."""

    manifest: Manifest  # the manifest as written (version includes this add)
    item: Item  # the item after the add
    images: list[ImageRecord] = field(default_factory=list)  # the new records, in input order


def validate_item_id(item_id: str) -> str:
    """Check an item id: 1-128 chars of ``[A-Za-z0-9._-]``, not starting with ``.``.

    Raises:
        BadInput: the id breaks the rule.
    """
    if not isinstance(item_id, str) or not _ITEM_ID.fullmatch(item_id):
        raise BadInput(
            f"item id {item_id!r} must be 1-128 characters of A-Z a-z 0-9 . _ - "
            "and must not start with '.'",
            details={"item_id": str(item_id)},
        )
    return item_id


def _check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise BadInput(f"metadata must be a JSON object, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(dict(metadata)))  # a deep, JSON-clean copy
    except (TypeError, ValueError) as exc:
        raise BadInput(f"metadata is not JSON-serialisable: {exc}") from exc


def _check_image(index: int, image: Sequence[Any]) -> NewImage:
    if len(image) != 5:
        raise BadInput(
            f"image {index}: expected (data, content_type, width, height, features), "
            f"got {len(image)} fields"
        )
    data, content_type, width, height, features = image
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise BadInput(f"image {index}: data must be non-empty bytes")
    if not isinstance(content_type, str) or "/" not in content_type:
        raise BadInput(f"image {index}: content type {content_type!r} is not a media type")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadInput(f"image {index}: {name} must be a positive integer, got {value!r}")
    return NewImage(
        bytes(data), content_type, width, height, _check_features(f"image {index}", features)
    )


def _check_features(where: str, features: Mapping[str, Any] | None) -> dict[str, bytes]:
    clean = {}
    for kind, blob in dict(features or {}).items():
        if not isinstance(kind, str) or not _FEATURE_KIND.fullmatch(kind):
            raise BadInput(f"{where}: feature kind {kind!r} must match [a-z0-9][a-z0-9._-]*")
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise BadInput(f"{where}: feature {kind!r} must be bytes")
        clean[kind] = bytes(blob)
    return clean


def _check_fingerprints(manifest: Manifest, fingerprints: Fingerprints) -> None:
    """Refuse features from another model than the catalog's; set them on first use."""
    for label, attr, new in (
        ("embedder", "embedder_fingerprint", fingerprints.embedder),
        ("verifier", "verifier_fingerprint", fingerprints.verifier),
    ):
        current = getattr(manifest, attr)
        if new is None:
            continue
        if current is not None and current != new:
            raise Conflict(
                f"catalog {manifest.catalog_id!r} was built with {label} {current!r}; "
                f"these features come from {label} {new!r}: re-index the catalog (python -m "
                f"catalog reindex {manifest.catalog_id}) or use "
                f"the same model",
                details={"catalog": current, "request": new, "stage": label},
            )
        setattr(manifest, attr, new)


# --- the repository -----------------------------------------------------------------------
class CatalogRepository:
    """Catalog operations over a `Store`; stateless, safe to share between threads.

    Args:
        store: where everything lives.
        max_retries: compare-and-swap attempts per manifest change before `Conflict`.
        backoff_s: first back-off after a lost race (doubles, with full jitter, cap 0.5 s).
        gc_grace_s: default age under which `gc_orphans` never deletes unreferenced data
            (an add in flight has written its data but not yet its manifest).
    """

    def __init__(
        self,
        store: Store,
        *,
        max_retries: int = 32,
        backoff_s: float = 0.005,
        gc_grace_s: float = 3600.0,
    ) -> None:
        if max_retries < 1:
            raise ValueError("max_retries must be >= 1")
        self.store = store
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.gc_grace_s = gc_grace_s

    # --- catalogs -----------------------------------------------------------------------
    def create_catalog(self, name: str, kind: str, owner: str) -> Manifest:
        """Create an empty catalog (version 1) with a new random id.

        Raises:
            BadInput: empty or over-long name, unknown kind, empty owner.
        """
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise BadInput(f"catalog name must be 1-{MAX_NAME_CHARS} characters")
        if kind not in KINDS:
            raise BadInput(f"catalog kind {kind!r} must be one of {', '.join(KINDS)}")
        if not isinstance(owner, str) or not owner:
            raise BadInput("catalog owner must be a non-empty string")
        for _ in range(8):
            manifest = Manifest(catalog_id=new_id(), name=name.strip(), kind=kind, owner=owner)
            try:
                self.store.put_if(
                    manifest_key(manifest.catalog_id), manifest.to_json(), expected_etag=None
                )
                return manifest
            except Conflict:  # an id collision: draw again
                continue
        raise Conflict("could not draw an unused catalog id")

    def list_catalog_ids(self) -> list[str]:
        """Ids of every folder under ``catalogs/`` (including half-deleted ones), sorted."""
        return [cid for cid in self.store.list_children(ROOT) if _CATALOG_ID.fullmatch(cid)]

    def list_catalogs(self, owner: str | None = None) -> list[Manifest]:
        """Every catalog (of ``owner`` when given), oldest first."""
        found = []
        for catalog_id in self.list_catalog_ids():
            try:
                manifest = self.get_manifest(catalog_id)
            except NotFound:  # being deleted, or only orphans left
                continue
            if owner is None or manifest.owner == owner:
                found.append(manifest)
        found.sort(key=lambda m: (m.created_at, m.catalog_id))
        return found

    def get_manifest(self, catalog_id: str) -> Manifest:
        """The catalog's current manifest.

        Raises:
            NotFound: no such catalog (or a malformed id).
        """
        return self.get_manifest_with_etag(catalog_id)[0]

    def get_manifest_with_etag(self, catalog_id: str) -> tuple[Manifest, str]:
        """The manifest and the store etag it was read at."""
        key = self._manifest_key(catalog_id)
        try:
            data, etag = self.store.get_with_etag(key)
        except NotFound:
            raise NotFound(
                f"catalog {catalog_id!r} not found", details={"catalog_id": catalog_id}
            ) from None
        return Manifest.from_json(data), etag

    def manifest_etag(self, catalog_id: str) -> str:
        """The manifest's etag without reading it: a cheap "did it change?" for caches.

        Raises:
            NotFound: no such catalog.
        """
        try:
            return self.store.etag(self._manifest_key(catalog_id))
        except NotFound:
            raise NotFound(
                f"catalog {catalog_id!r} not found", details={"catalog_id": catalog_id}
            ) from None

    def delete_catalog(self, catalog_id: str) -> int:
        """Delete the manifest first (the catalog disappears at once), then every key.

        Returns:
            Number of objects deleted (manifest included).

        Raises:
            NotFound: no such catalog.
        """
        self.get_manifest(catalog_id)
        self.store.delete(manifest_key(catalog_id))
        return 1 + self.store.delete_prefix(catalog_prefix(catalog_id))

    # --- items and images ---------------------------------------------------------------
    def add_images(
        self,
        catalog_id: str,
        item_id: str | None,
        metadata: Mapping[str, Any] | None,
        images: Iterable[NewImage | tuple[bytes, str, int, int, Mapping[str, bytes]]],
        fingerprints: Fingerprints | None = None,
    ) -> AddedImages:
        """Add images (and their features) to an item, creating the item if needed.

        Data is written first, then the manifest by compare-and-swap; when this returns,
        the images are in the catalog for good.

        Args:
            catalog_id: the catalog.
            item_id: the item; None draws a new id.
            metadata: for a new item its metadata; for an existing one, keys to update
                (shallow merge). None leaves it as is.
            images: ``(data, content_type, width, height, features)`` each; ``features``
                maps a kind (``emb.npy``, ``kp.npz``) to opaque bytes.
            fingerprints: the models that made the features (checked against the catalog).

        Raises:
            NotFound: no such catalog (or it was deleted meanwhile).
            BadInput: bad item id, metadata or image fields.
            Conflict: the fingerprints differ from the catalog's, or the manifest kept
                changing for ``max_retries`` attempts.
            StoreUnavailable: the store failed.
        """
        fingerprints = fingerprints or Fingerprints()
        item_id = new_id() if item_id is None else validate_item_id(item_id)
        clean_metadata = _check_metadata(metadata)
        new_images = [_check_image(i, image) for i, image in enumerate(images)]
        # Fail before writing anything when the catalog is missing or the model differs.
        _check_fingerprints(self.get_manifest(catalog_id), fingerprints)

        records: list[ImageRecord] = []
        written: list[str] = []
        try:
            for image in new_images:
                image_id = new_id()
                record = ImageRecord(
                    image_id=image_id,
                    key=image_key(catalog_id, item_id, image_id, image.content_type),
                    content_type=image.content_type,
                    width=image.width,
                    height=image.height,
                )
                self.store.put(record.key, image.data)
                written.append(record.key)
                for kind, blob in image.features.items():
                    key = feature_key(catalog_id, image_id, kind)
                    self.store.put(key, bytes(blob))
                    written.append(key)
                    record.feature_keys[kind] = key
                records.append(record)
        except BaseException:
            self._discard(catalog_id, written)
            raise

        def apply(manifest: Manifest) -> Item:
            _check_fingerprints(manifest, fingerprints)
            item = manifest.items.get(item_id)
            if item is None:
                item = manifest.items[item_id] = Item(item_id, metadata=dict(clean_metadata))
            elif metadata is not None:
                item.metadata.update(clean_metadata)
            now = utc_now()
            for record in records:
                item.images[record.image_id] = _copy_record(record, added_at=now)
            return item

        manifest, item = self._update_or_discard(catalog_id, apply, written)
        return AddedImages(manifest, item, [item.images[r.image_id] for r in records])

    def set_features(
        self,
        catalog_id: str,
        image_id: str,
        features: Mapping[str, bytes],
        fingerprints: Fingerprints | None = None,
    ) -> ImageRecord:
        """Store (or replace) feature blobs of an existing image, e.g. keypoints cached later.

        Raises:
            NotFound: no such catalog or image (also when it was removed meanwhile).
            Conflict: fingerprints differ from the catalog's.
        """
        fingerprints = fingerprints or Fingerprints()
        manifest = self.get_manifest(catalog_id)
        _check_fingerprints(manifest, fingerprints)
        if manifest.find_image(image_id) is None:
            raise self._no_image(catalog_id, image_id)
        checked = _check_features(f"image {image_id}", features)
        written: list[str] = []
        try:
            for kind, blob in checked.items():
                key = feature_key(catalog_id, image_id, kind)
                self.store.put(key, blob)
                written.append(key)
        except BaseException:
            self._discard(catalog_id, written)
            raise

        def apply(manifest: Manifest) -> ImageRecord:
            _check_fingerprints(manifest, fingerprints)
            found = manifest.find_image(image_id)
            if found is None:
                raise self._no_image(catalog_id, image_id)
            record = found[1]
            for kind in checked:
                record.feature_keys[kind] = feature_key(catalog_id, image_id, kind)
            return record

        # Rewriting an existing kind overwrote its blob in place (same key); nothing to discard.
        return self._update_or_discard(catalog_id, apply, written)[1]

    def replace_features(
        self,
        catalog_id: str,
        features: Mapping[str, Mapping[str, bytes]],
        fingerprints: Fingerprints,
    ) -> tuple[Manifest, list[str]]:
        """Re-index: every image's features replaced, and the catalog's fingerprints set to
        the models that made them, in one manifest write.

        The new blobs go under new keys (``features/<image>.r<run>.<kind>``), so until the
        manifest write the catalog stays whole on its old models. The old blobs are left in
        place (workers that have not synced yet may still read them): delete them with
        `discard_unreferenced` once they have, or let `gc_orphans` do it. Images removed
        meanwhile are skipped.

        Args:
            catalog_id: the catalog.
            features: image id -> feature kind -> blob, for every image of the catalog.
            fingerprints: the models that made ``features`` (both set, replacing the old).

        Returns:
            The new manifest, and the keys of the blobs it no longer names.

        Raises:
            NotFound: no such catalog.
            Conflict: images were added meanwhile (``details["missing"]`` lists them: describe
                them too and call again), or the manifest kept changing.
            StoreUnavailable: the store failed.
        """
        run = new_id(6)
        written: list[str] = []
        keys: dict[str, dict[str, str]] = {}
        try:
            for image_id, blobs in features.items():
                checked = _check_features(f"image {image_id}", blobs)
                keys[image_id] = {}
                for kind, blob in checked.items():
                    key = feature_key(catalog_id, image_id, f"r{run}.{kind}")
                    self.store.put(key, blob)
                    written.append(key)
                    keys[image_id][kind] = key
        except BaseException:
            self._discard(catalog_id, written)
            raise
        replaced: list[str] = []

        def apply(manifest: Manifest) -> None:
            images = [r for item in manifest.items.values() for r in item.images.values()]
            missing = sorted(r.image_id for r in images if r.image_id not in keys)
            if missing:
                raise Conflict(
                    f"catalog {catalog_id!r} gained {len(missing)} images during the re-index",
                    details={"missing": missing},
                )
            replaced.clear()
            for record in images:
                replaced.extend(record.feature_keys.values())
                record.feature_keys = dict(keys[record.image_id])
            manifest.embedder_fingerprint = fingerprints.embedder
            manifest.verifier_fingerprint = fingerprints.verifier

        manifest, _ = self._update_or_discard(catalog_id, apply, written)
        return manifest, sorted(set(replaced) - set(written))

    def save_calibration(
        self, catalog_id: str, blob: bytes, content_digest: str, status: str, fitted_at: str
    ) -> Manifest:
        """Store a catalog's own calibration (blob first, then the manifest names it), only if
        the catalog still holds what it was fitted on; the previous blob is deleted after.

        Raises:
            NotFound: no such catalog.
            Conflict: the catalog changed since the fit (``details["stale"]``: fit again).
        """
        key = calibration_key(catalog_id, content_digest)
        self.store.put(key, blob)

        def apply(manifest: Manifest) -> CalibrationRef | None:
            if manifest.content_digest() != content_digest:
                raise Conflict(
                    f"catalog {catalog_id!r} changed during its calibration fit: not stored",
                    details={"stale": True, "catalog_id": catalog_id},
                )
            old = manifest.calibration
            manifest.calibration = CalibrationRef(key, content_digest, status, fitted_at)
            return old

        manifest, old = self._update_or_discard(catalog_id, apply, [key])
        if old is not None and old.key != key:
            self._delete_quietly([old.key])
        return manifest

    def load_calibration(self, manifest: Manifest) -> bytes | None:
        """The calibration blob the manifest names, or None (none, or gone meanwhile)."""
        if manifest.calibration is None:
            return None
        try:
            return self.store.get(manifest.calibration.key)
        except NotFound:
            return None

    def discard_unreferenced(self, catalog_id: str, keys: list[str]) -> None:
        """Delete those of ``keys`` that the catalog's manifest does not name (best effort:
        failures leave them to `gc_orphans`)."""
        self._discard(catalog_id, keys)

    def update_metadata(
        self,
        catalog_id: str,
        item_id: str,
        metadata: Mapping[str, Any],
        *,
        replace: bool = False,
    ) -> Item:
        """Merge ``metadata`` into the item's (or replace it when ``replace``); when merging,
        a key whose value is None is removed (JSON merge patch, RFC 7396, on the top level).

        Raises:
            NotFound: no such catalog or item.
            BadInput: metadata is not a JSON object.
        """
        clean = _check_metadata(metadata)

        def apply(manifest: Manifest) -> Item:
            item = manifest.items.get(item_id)
            if item is None:
                raise self._no_item(catalog_id, item_id)
            if replace:
                item.metadata = dict(clean)
            else:
                merged = {**item.metadata, **clean}
                item.metadata = {k: v for k, v in merged.items() if v is not None}
            return item

        return self._update(catalog_id, apply)[1]

    def remove_item(self, catalog_id: str, item_id: str) -> Manifest:
        """Remove an item from the manifest, then delete its images and features.

        Raises:
            NotFound: no such catalog or item.
        """

        def apply(manifest: Manifest) -> list[str]:
            item = manifest.items.pop(item_id, None)
            if item is None:
                raise self._no_item(catalog_id, item_id)
            return item.store_keys()

        manifest, keys = self._update(catalog_id, apply)
        self._delete_quietly(keys)
        return manifest

    def remove_image(self, catalog_id: str, image_id: str) -> Manifest:
        """Remove one image from the manifest, then delete its bytes and features.

        The item stays (with its metadata) even when this was its last image.

        Raises:
            NotFound: no such catalog or image.
        """

        def apply(manifest: Manifest) -> list[str]:
            found = manifest.find_image(image_id)
            if found is None:
                raise self._no_image(catalog_id, image_id)
            item, record = found
            del item.images[image_id]
            return record.store_keys()

        manifest, keys = self._update(catalog_id, apply)
        self._delete_quietly(keys)
        return manifest

    def get_image(self, catalog_id: str, image_id: str) -> tuple[ImageRecord, bytes]:
        """An image's record and its encoded bytes.

        Raises:
            NotFound: no such catalog or image.
        """
        found = self.get_manifest(catalog_id).find_image(image_id)
        if found is None:
            raise self._no_image(catalog_id, image_id)
        record = found[1]
        try:
            return record, self.store.get(record.key)
        except NotFound:  # removed after we read the manifest
            raise self._no_image(catalog_id, image_id) from None

    def get_feature(self, key: str) -> bytes:
        """A feature blob by the key an `ImageRecord.feature_keys` holds.

        Raises:
            NotFound: no such blob.
            BadInput: not a feature key of a catalog.
        """
        if not key.startswith(ROOT) or "/features/" not in key:
            raise BadInput(f"{key!r} is not a catalog feature key")
        return self.store.get(key)

    # --- orphans ------------------------------------------------------------------------
    def gc_orphans(
        self, catalog_id: str, *, grace_s: float | None = None, now: float | None = None
    ) -> list[str]:
        """Delete the catalog's data keys that its manifest does not name.

        Only keys last written more than ``grace_s`` ago go (an add in flight has written
        data whose manifest write is still to come). Without a manifest (a delete that
        crashed half-way) every old key under the catalog is an orphan.

        Args:
            catalog_id: the catalog.
            grace_s: minimum age in seconds (default: the repository's ``gc_grace_s``).
            now: the current time, seconds since the epoch (default: ``time.time()``).

        Returns:
            The deleted keys, sorted.
        """
        if not _CATALOG_ID.fullmatch(catalog_id):
            raise NotFound(f"catalog {catalog_id!r} not found")
        grace_s = self.gc_grace_s if grace_s is None else grace_s
        cutoff = (time.time() if now is None else now) - grace_s
        infos = self.store.list_info(catalog_prefix(catalog_id))  # list BEFORE reading manifest
        try:
            referenced = self.get_manifest(catalog_id).referenced_keys()
            referenced.add(manifest_key(catalog_id))
        except NotFound:
            referenced = set()
        # sightings (and what the calibration keeps beside them) live under the catalog's
        # prefix but not in its manifest: their own documents name them (sightings package)
        kept = f"{catalog_prefix(catalog_id)}{SIGHTINGS_FOLDER}/"
        orphans = sorted(
            info.key
            for info in infos
            if info.key not in referenced
            and info.modified < cutoff
            and not info.key.startswith(kept)
        )
        for key in orphans:
            self.store.delete(key)
        if orphans:
            log.info("catalog %s: deleted %d orphaned objects", catalog_id, len(orphans))
        return orphans

    # --- internals ----------------------------------------------------------------------
    def _manifest_key(self, catalog_id: str) -> str:
        if not isinstance(catalog_id, str) or not _CATALOG_ID.fullmatch(catalog_id):
            raise NotFound(f"catalog {catalog_id!r} not found", details={"catalog_id": catalog_id})
        return manifest_key(catalog_id)

    def _update(self, catalog_id: str, apply: Callable[[Manifest], T]) -> tuple[Manifest, T]:
        """Read-apply-compare-and-swap the manifest until it sticks (bounded, with back-off)."""
        key = self._manifest_key(catalog_id)

        def change(manifest: Manifest) -> tuple[bytes, tuple[Manifest, T]]:
            result = apply(manifest)
            manifest.version += 1
            manifest.updated_at = utc_now()
            return manifest.to_json(), (manifest, result)

        return compare_and_swap(  # type: ignore[return-value]  # change never declines
            lambda: self.get_manifest_with_etag(catalog_id),
            change,
            lambda data, etag: self.store.put_if(key, data, expected_etag=etag),
            tries=self.max_retries,
            pause=lambda attempt: random.uniform(0.0, min(self.backoff_s * 2**attempt, 0.5)),
            gave_up=lambda: Conflict(
                f"catalog {catalog_id!r} kept changing: gave up after {self.max_retries} "
                "attempts; retry the request",
                details={"catalog_id": catalog_id},
            ),
        )

    def _update_or_discard(
        self, catalog_id: str, apply: Callable[[Manifest], T], written: list[str]
    ) -> tuple[Manifest, T]:
        """`_update`, deleting ``written`` data when the manifest surely did not take it."""
        try:
            return self._update(catalog_id, apply)
        except StoreUnavailable:
            # The write may have happened (e.g. a timeout after the server applied it):
            # keep the data; gc_orphans removes it later if no manifest names it.
            raise
        except BaseException:
            self._discard(catalog_id, written)
            raise

    def _discard(self, catalog_id: str, keys: list[str]) -> None:
        """Best-effort delete of data this call wrote and no manifest names."""
        if not keys:
            return
        try:
            try:
                referenced = self.get_manifest(catalog_id).referenced_keys()
            except NotFound:
                referenced = set()
            self._delete_quietly([k for k in keys if k not in referenced])
        except StoreUnavailable as exc:
            log.warning("catalog %s: left %d orphans (%s)", catalog_id, len(keys), exc.message)

    def _delete_quietly(self, keys: list[str]) -> None:
        """Delete data the manifest no longer names; failures leave orphans for gc."""
        for key in keys:
            try:
                self.store.delete(key)
            except StoreUnavailable as exc:
                log.warning("could not delete %s (left for gc_orphans): %s", key, exc.message)

    @staticmethod
    def _no_item(catalog_id: str, item_id: str) -> NotFound:
        return NotFound(
            f"item {item_id!r} not found in catalog {catalog_id!r}",
            details={"catalog_id": catalog_id, "item_id": item_id},
        )

    @staticmethod
    def _no_image(catalog_id: str, image_id: str) -> NotFound:
        return NotFound(
            f"image {image_id!r} not found in catalog {catalog_id!r}",
            details={"catalog_id": catalog_id, "image_id": image_id},
        )


def _copy_record(record: ImageRecord, *, added_at: str) -> ImageRecord:
    return ImageRecord(
        image_id=record.image_id,
        key=record.key,
        content_type=record.content_type,
        width=record.width,
        height=record.height,
        feature_keys=dict(record.feature_keys),
        added_at=added_at,
    )

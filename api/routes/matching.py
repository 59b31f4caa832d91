"""Matching frames against a catalog: detect (every object) and search (a ranked list)."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.inputs import classes_option, option, read_images
from api.metrics import count_matches, observe_stages
from api.routes.catalogs import needs_reindex, owned_manifest
from api.state import state
from catalog.manifest import Manifest
from core.errors import Conflict
from matching.pipeline import PipelineConfig, Timer
from matching.report import frame_to_dict, search_to_dict

bp = APIBlueprint("matching", __name__, tag="Matching", url_prefix="/v1/catalogs/<catalog_id>")


def catalog_for_matching(catalog_id: str):
    """The caller's catalog, ready to search (404 unknown or foreign; 409 when it was indexed
    with another embedder than this service runs for its kind)."""
    s = state()
    # checked on the stored manifest before the view is built: another model's vectors may
    # not even have this model's length
    _check_embedder(owned_manifest(catalog_id))
    manifest, view = s.catalogs.get(catalog_id)
    _check_embedder(manifest)
    return view


def calibration_source(view) -> str:
    """``catalog`` (the catalog's own calibration scored the answer) or ``kind_default``."""
    return state().pipeline.calibration_for(view)[1]


def _check_embedder(manifest: Manifest) -> None:
    if needs_reindex(manifest):
        mine = state().pipeline.embedder_for(manifest.kind).fingerprint
        raise Conflict(
            f"catalog {manifest.catalog_id!r} was indexed with embedder "
            f"{manifest.embedder_fingerprint}, this service runs {mine}: re-index it "
            f"(python -m catalog reindex {manifest.catalog_id}) or configure the same embedder"
        )


@bp.post("/detect")
def detect(catalog_id: str):
    """Find every object of a frame and the catalog items it is.

    Body: a raw ``image/jpeg`` or ``image/png`` frame, multipart field ``image``, or JSON
    ``{"image": base64}``. Options (query string, form or JSON): ``top_k`` (default 5),
    ``verify`` (keypoint verification, default true), ``min_score`` (default 0: every
    candidate), ``classes`` (comma-separated detector class names), ``whole_frame``.
    Answers ``{"detections": [{"box", "class", "confidence", "matches": [...]}], "timings"}``;
    ``score`` is the calibrated probability of the same item, ``verified`` is
    ``score >= threshold``; ``calibration``: ``catalog`` (the catalog's own scored it) or
    ``kind_default`` (the kind's: not fitted yet, too small, or stale).
    """
    s = state()
    timer = Timer()
    with timer.stage("decode"):
        image = read_images(s.settings, field="image", many=False)[0]
    config = PipelineConfig.from_settings(
        s.settings,
        top_k=option("top_k", int, s.settings.top_k, lo=1, hi=s.settings.max_top_k),
        verify=option("verify", bool, True),
        min_score=option("min_score", float, 0.0, lo=0.0, hi=1.0),
        classes=classes_option(),
        whole_frame=option("whole_frame", bool, s.settings.whole_frame),
    )
    view = catalog_for_matching(catalog_id)
    with s.model_lock:
        result = s.pipeline.match_frames([image.pixels], view, config)[0]
    result.timings = timer.seconds | result.timings
    observe_stages(result.timings)
    count_matches(result)
    return frame_to_dict(result) | {
        "catalog_version": view.version,
        "calibration": calibration_source(view),
    }


@bp.post("/search")
def search(catalog_id: str):
    """A ranked list of catalog items for a whole photo (the lost-pet use).

    Same bodies as detect. The photo and its detected objects are matched, and items are
    ranked by their best score over all of them; ``top_k`` up to 100 (default 20). Nothing
    is hidden behind a threshold unless ``min_score`` is given.
    """
    s = state()
    image = read_images(s.settings, field="image", many=False)[0]
    top_k = option("top_k", int, s.settings.search_top_k, lo=1, hi=s.settings.max_top_k)
    config = PipelineConfig.from_settings(
        s.settings,
        top_k=top_k,
        verify=option("verify", bool, True),
        min_score=option("min_score", float, 0.0, lo=0.0, hi=1.0),
        whole_frame=True,
        classes=classes_option(),
    )
    view = catalog_for_matching(catalog_id)
    with s.model_lock:
        result = s.pipeline.match_frames([image.pixels], view, config)[0]
    body = search_to_dict(result.ranked_items(top_k), result.timings)
    return body | {"catalog_version": view.version, "calibration": calibration_source(view)}

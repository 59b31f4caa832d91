"""Matching frames against a catalog: detect (every object) and search (a ranked list)."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.auth import check_owner
from api.inputs import classes_option, option, read_images
from api.labels import add_labels, frame_labels, labels_option
from api.metrics import count_matches, observe_stages
from api.routes.catalogs import needs_reindex
from api.schemas import (
    DetectQuery,
    DetectResult,
    ImageForm,
    ImageJSON,
    SearchQuery,
    SearchResult,
    image_body,
    v1_doc,
)
from api.state import state
from catalog.manifest import Manifest
from core.errors import Conflict
from matching.pipeline import PipelineConfig, Timer
from matching.report import frame_to_dict, search_to_dict, timings_to_dict

bp = APIBlueprint("matching", __name__, tag="Matching", url_prefix="/v1/catalogs/<catalog_id>")


def catalog_for_matching(catalog_id: str):
    """The caller's catalog, ready to search (404 unknown or foreign; 409 when it was indexed
    with another embedder than this service runs for its kind)."""
    # answered from the worker's cached manifest (re-read every SIGHTING_SYNC_INTERVAL_S);
    # the cache runs the check on a newly read manifest before it builds a view from it:
    # another model's vectors may not even have this model's length
    return state().catalogs.get(catalog_id, check=_check_usable)[1]


def calibration_source(view) -> str:
    """``catalog`` (the catalog's own calibration scored the answer) or ``kind_default``."""
    return state().pipeline.calibration_for(view)[1]


def _check_usable(manifest: Manifest) -> None:
    """404 unless the caller may use the catalog; 409 when another embedder indexed it."""
    check_owner(manifest.owner, manifest.catalog_id)
    if needs_reindex(manifest):
        mine = state().pipeline.embedder_for(manifest.kind).fingerprint
        raise Conflict(
            f"catalog {manifest.catalog_id!r} was indexed with embedder "
            f"{manifest.embedder_fingerprint}, this service runs {mine}: re-index it "
            f"(python -m catalog reindex {manifest.catalog_id}) or configure the same embedder"
        )


MATCH_ERRORS = {
    409: "the catalog was indexed with another embedder: re-index it",
    413: "image over the pixel limit",
    415: "not an image",
    422: "corrupt image or bad option",
}


@bp.post("/detect")
@bp.input(DetectQuery, location="query", arg_name="query")
@bp.output(DetectResult, description="Every object of the frame and its best matches")
@v1_doc(bp, "detect", MATCH_ERRORS, body=image_body(ImageForm, ImageJSON))
def detect(catalog_id: str, query: dict):
    """Find every object of a frame and the catalog items it is.

    Body: a raw ``image/jpeg`` or ``image/png`` frame, multipart field ``image``, or JSON
    ``{"image": base64}``. Options (query string, form or JSON): ``top_k`` (default 5),
    ``verify`` (keypoint verification, default true), ``min_score`` (default 0: every
    candidate), ``classes`` (comma-separated detector class names), ``whole_frame``,
    ``labels`` (a label set's id: each detection gets its ``labels``).
    Answers ``{"detections": [{"box", "class", "confidence", "matches": [...]}], "timings"}``;
    ``score`` is the calibrated probability of the same item, ``verified`` is
    ``score >= threshold``; ``calibration``: ``catalog`` (the catalog's own scored it) or
    ``kind_default`` (the kind's: not fitted yet, too small, or stale).
    """
    # ``query`` is the query string validated by DetectQuery; `option` reads each option from
    # it, or from a form field or JSON key of the same name
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
    label_set = labels_option()
    view = catalog_for_matching(catalog_id)
    with s.model_lock:
        result = s.pipeline.match_frames([image.pixels], view, config)[0]
    body = frame_to_dict(result)
    if label_set is not None:
        with timer.stage("labels"):
            add_labels(body, frame_labels(result, label_set))
    result.timings = timer.seconds | result.timings
    observe_stages(result.timings)
    count_matches(result)
    body["timings"] = timings_to_dict(result.timings)
    return body | {"catalog_version": view.version, "calibration": calibration_source(view)}


@bp.post("/search")
@bp.input(SearchQuery, location="query", arg_name="query")
@bp.output(SearchResult, description="Catalog items, best score first")
@v1_doc(bp, "search", MATCH_ERRORS, body=image_body(ImageForm, ImageJSON))
def search(catalog_id: str, query: dict):
    """A ranked list of catalog items for a whole photo (the lost-pet use).

    Same bodies as detect. The photo and its detected objects are matched, and items are
    ranked by their best score over all of them; ``top_k`` up to 100 (default 20). Nothing
    is hidden behind a threshold unless ``min_score`` is given.
    """
    s = state()  # ``query``: validated by SearchQuery, read by `option` (as in detect)
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

"""Matching frames against a catalog: detect (every object) and search (a ranked list)."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.auth import caller
from api.inputs import read_images
from api.metrics import count_matches, observe_stages
from api.options import options
from api.schemas import (
    MATCH_ERRORS,
    DetectOptionsIn,
    DetectResult,
    ImageForm,
    ImageJSON,
    SearchOptionsIn,
    SearchResult,
    image_body,
    v1_doc,
)
from api.serialise import detected_json, searched_json
from api.state import state
from matching.pipeline import Timer
from service import matching
from service.options import DetectOptions, SearchOptions

bp = APIBlueprint("matching", __name__, tag="Matching", url_prefix="/v1/catalogs/<catalog_id>")


@bp.post("/detect")
@options(bp, DetectOptionsIn)
@bp.output(DetectResult, description="Every object of the frame and its best matches")
@v1_doc(bp, "detect", MATCH_ERRORS, body=image_body(ImageForm, ImageJSON, DetectOptionsIn))
def detect(catalog_id: str, opts: DetectOptions):
    """Find every object of a frame and the catalog items it is.

    Body: a raw ``image/jpeg`` or ``image/png`` frame, multipart field ``image``, or JSON
    ``{"image": base64}``. Options (query string, form or JSON): ``top_k`` (default 5),
    ``verify`` (keypoint verification, default true), ``min_score`` (default 0: every
    candidate), ``classes`` (comma-separated detector class names), ``whole_frame``,
    ``labels`` (a label set's id: each detection gets its ``labels``), ``rank``
    (``embedding`` or ``local``: keypoints on the object rank the catalog's top ``shortlist``
    items; default: the catalog kind's, docs/local-ranking.md), ``shortlist`` (1-5000).
    Answers ``{"detections": [{"box", "class", "confidence", "matches": [...]}], "timings",
    "ranking"}``; ``ranking``: ``{"method", "candidates", "checked", "partial"}``;
    ``score`` is the calibrated probability of the same item, ``verified`` is
    ``score >= threshold``; ``calibration``: ``catalog`` (the catalog's own scored it) or
    ``kind_default`` (the kind's: not fitted yet, too small, or stale).
    """
    timer = Timer()
    with timer.stage("decode"):
        image = read_images(state().settings, field="image", many=False)[0]
    detected = matching.detect(state(), caller(), catalog_id, image.pixels, opts, timer)
    observe_stages(detected.result.timings)
    count_matches(detected.result)
    return detected_json(detected)


@bp.post("/search")
@options(bp, SearchOptionsIn)
@bp.output(SearchResult, description="Catalog items, best score first")
@v1_doc(bp, "search", MATCH_ERRORS, body=image_body(ImageForm, ImageJSON, SearchOptionsIn))
def search(catalog_id: str, opts: SearchOptions):
    """A ranked list of catalog items for a whole photo (the lost-pet use).

    Same bodies as detect. The photo and its detected objects are matched, and items are
    ranked by their best score over all of them; ``top_k`` up to 100 (default 20). Nothing
    is hidden behind a threshold unless ``min_score`` is given. ``rank`` and ``shortlist`` as
    in detect; the answer's ``ranking`` says which ranking produced it.
    """
    image = read_images(state().settings, field="image", many=False)[0]
    return searched_json(matching.search(state(), caller(), catalog_id, image.pixels, opts))

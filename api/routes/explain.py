"""Explaining a match: the picture (or numbers) of why a photo matches one catalog item."""

from __future__ import annotations

import numpy as np
from apiflask import APIBlueprint
from flask import Response, request

from api.inputs import classes_option, json_body, option, read_images
from api.routes.matching import MATCH_ERRORS, catalog_for_matching
from api.schemas import ExplainQuery, Explanation, ImageForm, ImageJSON, binary, image_body, v1_doc
from api.state import state
from core.errors import BadInput, NotFound
from core.images import decode_image, encode_png
from matching.explain import explain_match, parse_box
from matching.pipeline import PipelineConfig

bp = APIBlueprint(
    "explain", __name__, tag="Matching", url_prefix="/v1/catalogs/<catalog_id>/matches"
)


def _raw_option(name: str) -> object | None:
    """An option as sent (query string, form field or JSON value), None when absent or empty."""
    raw = request.args.get(name)
    if raw is None and request.form:
        raw = request.form.get(name)
    if raw is None and request.is_json:
        raw = json_body().get(name)
    return None if raw is None or raw == "" else raw


def _box_option() -> np.ndarray | None:
    """``box``: ``"x0,y0,x1,y1"`` or a JSON list of four numbers; None when absent."""
    raw = _raw_option("box")
    if raw is None:
        return None
    if not isinstance(raw, str | list):
        raise BadInput(f"box must be 'x0,y0,x1,y1' or a list of four numbers, got {raw!r}")
    return parse_box(raw)


@bp.post("/explain")
# documented, not validated here: item_id may also come in a form field or JSON key (`option`)
@bp.input(ExplainQuery, location="query", arg_name="query", validation=False)
@v1_doc(
    bp,
    "explain",
    MATCH_ERRORS | {404: "unknown catalog, or no such item in it"},
    body=image_body(ImageForm, ImageJSON),
    responses={
        200: {
            "description": "The explanation picture (PNG); with format=json, its numbers",
            "content": {"image/png": binary(), "application/json": {"schema": Explanation}},
        }
    },
)
def explain(catalog_id: str, query: object):
    """Why a photo matches one catalog item: keypoint correspondences and Grad-CAM heat-maps.

    Same image bodies as detect (raw ``image/jpeg`` / ``image/png``, multipart field
    ``image``, JSON ``{"image": base64}``). Options (query string, form or JSON):
    ``item_id`` (required), ``box`` (``x0,y0,x1,y1`` pixels of the crop to explain; by
    default the detection that ranks the item best, else the whole photo), ``format``
    (``png``, default, or ``json``: the numbers only), ``classes``.

    The PNG shows the query crop and the item's catalog image with the RANSAC-inlier keypoint
    lines, below them where each image's embedding supports the similarity (Grad-CAM), and a
    caption. The JSON: ``item_id``, ``image_id`` (catalog image drawn), ``box``, ``class``,
    ``rank``, ``score``, ``verified``, ``similarity``, ``inliers`` (as detect reports them for
    that crop; null when the item is not among its top 20 candidates), ``pair`` (the drawn
    pair's ``similarity``, ``inliers``, ``matches``, ``spread``) and ``timings`` (ms).
    """
    s = state()
    view = catalog_for_matching(catalog_id)
    item_id = option("item_id", str, None)
    if item_id is None:
        raise BadInput("item_id is required: the catalog item to explain")
    if item_id not in view.images_of and not view.index.images_of(item_id):
        raise NotFound(f"no item {item_id!r} in catalog {catalog_id!r}")
    fmt = option("format", str, "png").lower()
    if fmt not in ("png", "json"):
        raise BadInput(f"format must be 'png' or 'json', got {fmt!r}")
    box = _box_option()
    image = read_images(s.settings, field="image", many=False)[0]
    config = PipelineConfig.from_settings(s.settings, classes=classes_option())

    def load_image(image_id: str) -> np.ndarray:
        _, data = s.repository.get_image(catalog_id, image_id)
        return decode_image(data, max_pixels=s.settings.max_image_pixels)

    with s.model_lock:
        explanation = explain_match(
            s.pipeline, view, image.pixels, item_id, box, load_image=load_image, config=config
        )
    if fmt == "json":
        return explanation.numbers | {"catalog_version": view.version}
    return Response(encode_png(explanation.picture), mimetype="image/png")

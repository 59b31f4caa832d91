"""Explaining a match: the picture (or numbers) of why a photo matches one catalog item."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from api.auth import caller
from api.inputs import read_images
from api.options import options
from api.schemas import (
    MATCH_ERRORS,
    ExplainOptionsIn,
    Explanation,
    ImageForm,
    ImageJSON,
    binary,
    image_body,
    v1_doc,
)
from api.serialise import explained_json
from api.state import state
from core.images import encode_png
from service import matching
from service.options import ExplainOptions

bp = APIBlueprint(
    "explain", __name__, tag="Matching", url_prefix="/v1/catalogs/<catalog_id>/matches"
)


@bp.post("/explain")
@options(bp, ExplainOptionsIn)
@v1_doc(
    bp,
    "explain",
    MATCH_ERRORS | {404: "unknown catalog, or no such item in it"},
    body=image_body(ImageForm, ImageJSON, ExplainOptionsIn),
    responses={
        200: {
            "description": "The explanation picture (PNG); with format=json, its numbers",
            "content": {"image/png": binary(), "application/json": {"schema": Explanation}},
        }
    },
)
def explain(catalog_id: str, opts: ExplainOptions):
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
    image = read_images(state().settings, field="image", many=False)[0]
    explained = matching.explain(state(), caller(), catalog_id, image.pixels, opts)
    if opts.format == "json":
        return explained_json(explained)
    return Response(encode_png(explained.explanation.picture), mimetype="image/png")

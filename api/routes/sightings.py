"""Sightings of a catalog and their review: list, read (with the crop and photo), review.

Short adapters of `service.sightings` (issue 23). Keeping is an option of detect, search and
stream frames (``keep=true``, or ``SIGHTING_SIGHTINGS_KEEP_ALL``).
"""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from flask import Response

from api.auth import caller
from api.options import options
from api.schemas import OptionsIn, WholeNumber, binary, v1_doc
from api.serialise import reviewed_json, sighting_json, sighting_page_json
from api.state import state
from catalog.repository import ITEM_ID
from service import sightings
from service.options import SightingListOptions
from sightings.model import STATES, VERDICTS
from sightings.repository import MAX_PAGE
from sightings.review import ReviewRequest

bp = APIBlueprint(
    "sightings", __name__, tag="Sightings", url_prefix="/v1/catalogs/<catalog_id>/sightings"
)

_ITEM_ID = f"^{ITEM_ID.pattern}$"  # the repository's one rule for an item id


class SightingListOptionsIn(OptionsIn):
    """Filters and page of a sightings listing."""

    OPTIONS = SightingListOptions

    state = String(validate=OneOf(STATES), metadata={"description": "one of " + ", ".join(STATES)})
    item_id = String(
        validate=Length(1, 128),
        metadata={"description": "the reviewed item, or (unreviewed) any candidate's item"},
    )
    source = String(
        validate=Length(1, 200),
        metadata={"description": "stream id, camera, file name, or a kind (detect, stream...)"},
    )
    since = String(validate=Length(1, 40), metadata={"description": "kept at or after (ISO 8601)"})
    until = String(validate=Length(1, 40), metadata={"description": "kept before (ISO 8601)"})
    offset = WholeNumber(load_default=0, validate=Range(min=0))
    limit = WholeNumber(load_default=50, validate=Range(min=1, max=MAX_PAGE))


class SightingCandidate(Schema):
    item_id = String(required=True)
    image_id = String(required=True)
    score = Float(required=True)
    similarity = Float(required=True)
    inliers = Integer(required=True)
    spread = Float(required=True)
    checked = Boolean(required=True)
    verified = Boolean(required=True)
    image_url = String(required=True, metadata={"description": "the catalog image it matched"})


class SightingSourceOut(Schema):
    kind = String(required=True)
    stream_id = String(allow_none=True)
    frame_index = Integer(allow_none=True)
    track_id = Integer(allow_none=True)
    file_name = String(allow_none=True)
    exif_time = String(allow_none=True)
    camera = String(allow_none=True)
    job_id = String(allow_none=True)


class SightingReview(Schema):
    verdict = String(required=True)
    item_id = String(allow_none=True)
    tenant = String(required=True)
    at = String(required=True)
    reference_image_id = String(allow_none=True)
    metadata = Dict(allow_none=True)


class SightingOut(Schema):
    sighting_id = String(required=True)
    catalog_id = String(required=True)
    state = String(required=True, metadata={"description": ", ".join(STATES)})
    item_id = String(allow_none=True, metadata={"description": "what the last review said"})
    catalog_version = Integer(required=True)
    kept_at = String(required=True)
    updated_at = String(required=True)
    box = List(Float(), required=True)
    class_name = String(required=True)
    confidence = Float(required=True)
    calibration = String(required=True)
    crop_size = List(Integer(), required=True)
    source = Nested(SightingSourceOut, required=True)
    candidates = List(Nested(SightingCandidate), required=True)
    reviews = List(Nested(SightingReview), required=True)
    crop_url = String(required=True)
    photo_url = String(allow_none=True)


class SightingPageOut(Schema):
    sightings = List(Nested(SightingOut), required=True)
    total = Integer(required=True)
    offset = Integer(required=True)
    limit = Integer(required=True)
    counts = Dict(required=True, metadata={"description": "unreviewed sightings of the catalog"})


class ReviewIn(Schema):
    verdict = String(required=True, validate=OneOf(VERDICTS))
    item_id = String(
        allow_none=True,
        validate=Regexp(_ITEM_ID),
        metadata={"description": "same: the item; new_item: its id (drawn when absent)"},
    )
    add_reference = Boolean(
        load_default=False, metadata={"description": "same: the crop becomes a reference image"}
    )
    metadata = Dict(allow_none=True, metadata={"description": "new_item: the item's metadata"})


#: the review body as the API document states it: one shape per verdict (a hand-written
#: schema, as marshmallow cannot say "item_id only with same or new_item"); ReviewIn still
#: validates the fields and the service checks the combination (sightings.review.check_request)
_NULL = {"type": "null"}
REVIEW_BODY = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "verdict": {"const": "same"},
                "item_id": {"type": "string", "pattern": _ITEM_ID},
                "add_reference": {"type": "boolean"},
                "metadata": _NULL,
            },
            "required": ["verdict", "item_id"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "verdict": {"const": "none"},
                "item_id": _NULL,
                "add_reference": {"const": False},
                "metadata": _NULL,
            },
            "required": ["verdict"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "verdict": {"const": "new_item"},
                "item_id": {"type": ["string", "null"], "pattern": _ITEM_ID},
                "add_reference": {"type": "boolean"},
                "metadata": {"type": ["object", "null"]},
            },
            "required": ["verdict"],
            "additionalProperties": False,
        },
    ]
}


class ReviewOut(Schema):
    sighting = Nested(SightingOut, required=True)
    created_item = String(allow_none=True)
    reference_image_id = String(allow_none=True)
    removed_image_id = String(allow_none=True)
    catalog_version = Integer(required=True)


@bp.get("")
@options(bp, SightingListOptionsIn)
@bp.output(SightingPageOut, description="One page of sightings, newest first")
@v1_doc(bp, "list_sightings", {})
def list_sightings(catalog_id: str, opts: SightingListOptions):
    """The catalog's kept sightings, newest first, filtered by ``state`` (unreviewed,
    confirmed, none, new_item), ``item_id``, ``source`` and time (``since``, ``until``);
    paged by ``offset`` and ``limit`` (at most 200). ``counts.unreviewed``: the queue's size."""
    return sighting_page_json(sightings.list_sightings(state(), caller(), catalog_id, opts))


@bp.get("/<sighting_id>")
@bp.output(SightingOut, description="The sighting, its candidates and its review history")
@v1_doc(bp, "get_sighting", {})
def get_sighting(catalog_id: str, sighting_id: str):
    """One sighting: its box, source, ranked candidates (with the URL of the catalog image
    each matched), the catalog version it was matched against, its state and review history,
    and the URLs of its crop and photo."""
    return sighting_json(sightings.get_sighting(state(), caller(), catalog_id, sighting_id))


def _image(catalog_id: str, sighting_id: str, which: str) -> Response:
    data = sightings.sighting_image(state(), caller(), catalog_id, sighting_id, which)
    return Response(data, mimetype="image/jpeg")


@bp.get("/<sighting_id>/crop")
@v1_doc(
    bp,
    "get_sighting_crop",
    {},
    responses={200: {"description": "The crop (JPEG)", "content": {"image/jpeg": binary()}}},
)
def get_sighting_crop(catalog_id: str, sighting_id: str):
    """The sighting's crop as kept (JPEG)."""
    return _image(catalog_id, sighting_id, "crop")


@bp.get("/<sighting_id>/photo")
@v1_doc(
    bp,
    "get_sighting_photo",
    {},
    responses={200: {"description": "The photo (JPEG)", "content": {"image/jpeg": binary()}}},
)
def get_sighting_photo(catalog_id: str, sighting_id: str):
    """The photo the sighting came from (JPEG; 404 when none was kept: searches, videos)."""
    return _image(catalog_id, sighting_id, "photo")


@bp.post("/<sighting_id>/review")
@bp.input(ReviewIn, location="json", arg_name="body")
@bp.output(ReviewOut, description="The review is kept")
@v1_doc(
    bp,
    "review_sighting",
    {400: "the body is not JSON", 409: "new_item: the item exists"},
    body={"required": True, "content": {"application/json": {"schema": REVIEW_BODY}}},
)
def review(catalog_id: str, sighting_id: str, body: dict):
    """Review a sighting with one verdict: ``{"verdict": "same", "item_id": ..,
    "add_reference": false}`` (an item of the catalog, among the candidates or not; with
    ``add_reference`` the crop becomes a reference image of it), ``{"verdict": "none"}``
    (not in the catalog), or ``{"verdict": "new_item", "item_id": .., "metadata": {..}}``
    (creates the item from the crop). The reviewer (the key's tenant) and the time are
    kept; a later review changes the verdict and the history stays. 404: unknown catalog,
    sighting (or another tenant's) or item (also one deleted since); 409: ``new_item`` whose
    id exists; 422: unknown verdict, ``same`` without ``item_id``. Each review schedules
    the catalog's calibration refit."""
    request = ReviewRequest(
        verdict=body["verdict"],
        item_id=body.get("item_id"),
        add_reference=body.get("add_reference", False),
        metadata=body.get("metadata"),
    )
    outcome = sightings.review(state(), caller(), catalog_id, sighting_id, request)
    return reviewed_json(outcome)

"""The OpenAPI shapes of the HTTP service: marshmallow schemas of every request and answer.

APIFlask turns these into ``/openapi.json``: each operation's options (one `OptionsIn` schema,
loaded by `api.options` from the query string, form fields or JSON keys into a typed options
object of `service.options`, and documented as query parameters and inside the bodies),
answers (``@bp.output`` / the ``responses`` of `v1_doc`), the one error shape
(``HTTP_ERROR_SCHEMA``) and the request bodies, which come in several media types at once (raw
image, multipart, JSON base64) and are therefore declared by `v1_doc` too.

Defaults and limits that are settings (``SIGHTING_TOP_K``, ``SIGHTING_MAX_TOP_K``, the
detector's class names...) are read from the serving app when a request is loaded or the
document built (`from_setting`, `UpToSetting`, `ClassNames`), and from the settings table's
defaults outside an app: they are never restated here or in a route.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Any, ClassVar

import numpy as np
from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, File, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from flask import current_app, has_app_context
from marshmallow import INCLUDE, RAISE, ValidationError, post_load, validates_schema

from analytics.upload_warnings import CODES as WARNING_CODES
from analytics.upload_warnings import refuse_codes
from catalog.repository import CATALOG_ID, ITEM_ID
from core.errors import BadInput
from core.kinds import KINDS
from core.settings import default_of
from discovery.model import STATES as PROPOSAL_STATES
from labels.text import MAX_PROMPT_CHARS, MAX_PROMPTS, check_prompts
from matching.local_rank import MAX_LOCAL_SHORTLIST, RANKS
from service.options import (
    BatchOptions,
    DetectOptions,
    ExplainOptions,
    SearchOptions,
    StreamOptions,
    UploadOptions,
    VideoOptions,
)
from service.traps import CARDS
from tracking.streams import STREAM_ID
from traps.batch import TrapConfig

API_KEY = "ApiKeyAuth"  # the security scheme's name (header X-API-Key)
# the id rules of the layers below, as anchored patterns (one rule per id)
STREAM_ID_PATTERN = f"^{STREAM_ID.pattern}$"
CATALOG_ID_PATTERN = f"^{CATALOG_ID.pattern}$"
ITEM_ID_PATTERN = f"^({ITEM_ID.pattern})?$"  # or empty: a new random id
VIDEO_KEY_PATTERN = r"^videos/[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"
IMAGE_TYPES = ("image/jpeg", "image/png")


# --------------------------------------------------------------------------- live limits
def setting(name: str) -> Any:
    """A setting of the serving app, or its default outside an app context."""
    if has_app_context() and "sighting" in current_app.extensions:
        return getattr(current_app.extensions["sighting"].settings, name)
    return default_of(name)


def from_setting(name: str):
    """A ``load_default``: the serving app's setting ``name`` when the request is loaded."""
    return lambda: setting(name)


class UpToSetting(Range):
    """``min <= value <= settings.<name>`` of the serving app."""

    def __init__(self, min: int, setting: str) -> None:  # noqa: A002 (Range's own name)
        self.setting = setting
        super().__init__(min=min, max=None)

    @property
    def max(self) -> int:  # read by validation and by apispec (``maximum``)
        return setting(self.setting)

    @max.setter
    def max(self, value: object) -> None:  # Range.__init__ assigns it; the setting rules
        pass


class ClassNames(Regexp):
    """A comma-separated list of the serving detector's class names (empty: no filter)."""

    def __init__(self) -> None:
        super().__init__(".*", error="unknown class name(s) in {input!r}; see the enum")

    @property
    def regex(self) -> re.Pattern:  # read by validation and by apispec (``pattern``)
        names: tuple[str, ...] = ()
        if has_app_context() and "sighting" in current_app.extensions:
            names = tuple(current_app.extensions["sighting"].pipeline.detector.names)
        one = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) or "[^,]+"
        return re.compile(f"^(?:(?:{one})(?:,(?:{one}))*)?$")

    @regex.setter
    def regex(self, value: object) -> None:  # Regexp.__init__ assigns it
        pass


# -------------------------------------------------------------------------------- errors
class ErrorDetail(Schema):
    status = Integer(required=True, metadata={"example": 404})
    code = String(required=True, metadata={"example": "not_found"})
    message = String(required=True, metadata={"example": "catalog 'abc' not found"})
    details = Dict(required=True, metadata={"example": {}})


class Error(Schema):
    """Every error answer: ``{"error": {"status", "code", "message", "details"}}``."""

    error = Nested(ErrorDetail, required=True)


# ------------------------------------------------------------------------------ catalogs
class CatalogIn(Schema):
    """A new catalog (no other keys: a misspelt one is refused with 422)."""

    class Meta:
        unknown = RAISE  # explicit, so the document says additionalProperties: false

    name = String(required=True, validate=Length(1, 200), metadata={"example": "Shop 12 shelf"})
    kind = String(load_default="products", validate=OneOf(KINDS), metadata={"example": "products"})


class Catalog(Schema):
    id = String(required=True, metadata={"example": "k2c9x0q7d1ma"})
    name = String(required=True)
    kind = String(required=True, validate=OneOf(KINDS))
    version = Integer(required=True, metadata={"description": "+1 on every change"})
    items = Integer(required=True)
    images = Integer(required=True)
    created_at = String(required=True, metadata={"description": "ISO 8601 UTC"})
    updated_at = String(required=True, metadata={"description": "ISO 8601 UTC"})
    embedder = String(
        required=True, allow_none=True, metadata={"description": "fingerprint of its vectors"}
    )
    needs_reindex = Boolean(
        required=True, metadata={"description": "indexed with another embedder: searches 409"}
    )


class WholeNumber(Integer):
    """An integer that refuses a number with a fraction (marshmallow's would truncate it)."""

    def _validated(self, value):
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._validated(value)


class MetadataPatch(Schema):
    """An edit of an item's metadata."""

    class Meta:
        unknown = RAISE  # explicit, so the document says additionalProperties: false

    metadata = Dict(required=True, metadata={"description": "keys to set; null removes one"})
    replace = Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={"description": "replace all metadata"},
    )


class CatalogCalibrationState(Schema):
    """Which calibration scores a catalog's answers, and what it rests on."""

    source = String(
        required=True,
        validate=OneOf(["catalog", "kind_default"]),
        metadata={"description": "its own calibration, or its kind's default"},
    )
    state = String(required=True, validate=OneOf(["fitted", "not_fitted", "stale", "too_small"]))
    threshold = Float(required=True, metadata={"description": "score at which verified"})
    reason = String(metadata={"description": "why it is too small to calibrate"})
    genuine_pairs = Integer()
    impostor_pairs = Integer()
    reviewed_pairs = Integer(
        metadata={"description": "pairs from reviewed sightings the fit rests on (issue 23)"}
    )
    reviewed_genuine_pairs = Integer()
    reviewed_impostor_pairs = Integer()
    reviewed_sightings = Integer(metadata={"description": "reviewed sightings the fit used"})
    fitted_at = String(metadata={"description": "ISO 8601 UTC"})
    look_alikes = List(
        Dict(),
        metadata={
            "description": "worst look-alike pairs: item, looks_like, score, ...; an upload's "
            "possible duplicates carry source: upload"
        },
    )
    fit = Dict(metadata={"description": "the fit's figures on the catalog's own pairs"})


class CatalogDetail(Catalog):
    calibration = Nested(CatalogCalibrationState, required=True)


class CatalogList(Schema):
    catalogs = List(Nested(Catalog), required=True)


# --------------------------------------------------------------------------------- items
class ImageRecord(Schema):
    image_id = String(required=True)
    width = Integer(required=True)
    height = Integer(required=True)
    content_type = String(required=True, metadata={"example": "image/jpeg"})
    added_at = String(required=True, metadata={"description": "ISO 8601 UTC"})


class Item(Schema):
    item_id = String(required=True, metadata={"example": "arla-milk"})
    metadata = Dict(required=True, metadata={"example": {"name": "Arla standard milk 1 l"}})
    images = List(Nested(ImageRecord), required=True)


class ItemList(Schema):
    items = List(Nested(Item), required=True)
    version = Integer(required=True)


class PossibleDuplicate(Schema):
    item_id = String(required=True)
    score = Float(required=True)
    similarity = Float(required=True)
    inliers = Integer(required=True)
    verified = Boolean(required=True)
    image_index = Integer(required=True, metadata={"description": "which uploaded image"})


class AddedImages(Schema):
    item_id = String(required=True)
    image_ids = List(String(), required=True)
    version = Integer(required=True, metadata={"description": "the catalog's new version"})
    warnings = List(
        List(String()),
        required=True,
        metadata={
            "description": "per image, in upload order: dark, over_exposed, blurry, "
            "low_information, odd_size, greyscale, no_object, exact_duplicate|near_duplicate "
            "of image X of item Y (the first word is the code refuse= names)"
        },
    )
    possible_duplicates = List(
        Nested(PossibleDuplicate),
        required=True,
        metadata={
            "description": "existing items the new images may show (score >= "
            "SIGHTING_DUPLICATE_MIN_SCORE, or verified), best first"
        },
    )


# ------------------------------------------------------------------------------ options
class Classes(String):
    """Detector class names: ``"a,b"`` (or, in JSON, a non-empty list of names)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list):
            if not value or not all(isinstance(v, str) and v for v in value):
                raise ValidationError("a list of class names must hold at least one name")
            value = ",".join(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Box(String):
    """``x0,y0,x1,y1`` pixels (or, in JSON, a list of four numbers): float64 (4,). Their order
    (x0 < x1, y0 < y1) is checked by the use case, once the catalog and item are known."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str | list):
            raise ValidationError("box must be 'x0,y0,x1,y1' or a list of four numbers")
        parts = value.split(",") if isinstance(value, str) else value
        try:
            box = np.array([float(v) for v in parts], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError(f"box must be four numbers x0,y0,x1,y1; got {value!r}") from None
        if box.shape != (4,) or not np.isfinite(box).all():
            raise ValidationError(f"box must be four finite numbers x0,y0,x1,y1; got {value!r}")
        return box


class LowerString(String):
    """A string compared without case (``PNG`` is ``png``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).lower()


class JSONObject(Dict):
    """A JSON object; in a form field, its JSON text."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValidationError("must be a JSON object")
        return super()._deserialize(value, attr, data, **kwargs)


class Prompts(String):
    """Labels by text: prompts one a line (blank lines ignored), checked by
    `labels.text.check_prompts` (distinct, at most ``MAX_PROMPTS`` of ``MAX_PROMPT_CHARS``)."""

    # the whole text: 256 prompts of 155 characters; a query string is shorter still
    # (gunicorn reads request lines up to 4094 bytes): long lists go in a form field or JSON
    MAX_CHARS = 40_000

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > self.MAX_CHARS:
            raise ValidationError(f"{len(text)} characters; at most {self.MAX_CHARS}")
        try:
            return check_prompts([line for line in text.splitlines() if line.strip()])
        except BadInput as exc:
            raise ValidationError(exc.message) from None


class OptionsIn(Schema):
    """An operation's options (query string, form fields or JSON keys: `api.options`), loaded
    into its typed options object (``OPTIONS``, a dataclass of `service.options`)."""

    OPTIONS: ClassVar[type]
    BODY_ONLY: ClassVar[tuple[str, ...]] = ()  # fields not read from (nor documented in) query
    QUERY_DOC_ONLY: ClassVar[tuple[str, ...]] = ()  # read anywhere, documented in the query only

    @validates_schema
    def _labels_or_prompts(self, data: dict, **kwargs) -> None:
        if data.get("labels") and data.get("prompts"):
            raise ValidationError(
                "give labels (a label set, by example) or prompts (by text), not both", "prompts"
            )

    @post_load
    def _typed(self, data: dict, **kwargs) -> Any:
        return self.OPTIONS(**self.prepare(data))

    def prepare(self, data: dict) -> dict:
        """The loaded fields as the options object takes them."""
        if "classes" in data:
            names = tuple(n for n in data["classes"].split(",") if n)
            data["classes"] = names or None
        return data


def _top_k(default: str) -> WholeNumber:
    return WholeNumber(
        load_default=from_setting(default),
        validate=UpToSetting(1, "max_top_k"),
        metadata={"description": f"candidates per object (default SIGHTING_{default.upper()})"},
    )


def _verify() -> Boolean:
    return Boolean(load_default=True, metadata={"description": "keypoint verification"})


def _rank() -> String:
    return String(
        validate=OneOf(RANKS),
        metadata={
            "description": "embedding (similarity; keypoints verify its best 5) or local "
            "(keypoints on the object rank the top `shortlist`; docs/local-ranking.md); "
            "default: the catalog kind's (SIGHTING_LOCAL_RANK_KINDS)"
        },
    )


def _shortlist() -> WholeNumber:
    return WholeNumber(
        validate=Range(1, MAX_LOCAL_SHORTLIST),
        metadata={
            "description": "rank=local: the catalog's top N items by embedding that keypoints "
            "rank (default SIGHTING_LOCAL_SHORTLIST)"
        },
    )


def _min_score() -> Float:
    return Float(
        load_default=0.0,
        validate=Range(0.0, 1.0),
        metadata={"description": "hide matches scored below (0: every candidate)"},
    )


def _keep() -> Boolean:
    return Boolean(
        load_default=False,
        metadata={
            "description": "keep the matched objects as sightings to review (also always with "
            "SIGHTING_SIGHTINGS_KEEP_ALL); the answer lists their sighting_ids"
        },
    )


def _labels() -> String:
    return String(
        validate=Regexp(CATALOG_ID_PATTERN),
        metadata={"description": "a label set's id: label each detection (default: none)"},
    )


def _prompts() -> Prompts:
    return Prompts(
        metadata={
            "description": "labels by text (zero-shot CLIP) instead of a label set: one prompt "
            "a line, e.g. 'a photo of a tiger' and 'a photo of a lion' on two lines; a "
            f"probability per prompt. At most {MAX_PROMPTS} distinct prompts of "
            f"{MAX_PROMPT_CHARS} characters; needs the operator's SIGHTING_CLIP (409 without)",
            "minLength": 1,
            "maxLength": Prompts.MAX_CHARS,
        },
    )


def _classes() -> Classes:
    return Classes(
        validate=ClassNames(),
        metadata={"description": "comma-separated detector class names to keep (default: all)"},
    )


_CODES = "|".join(("all", *WARNING_CODES))


class ImagesOptionsIn(OptionsIn):
    """Options of an upload of images."""

    OPTIONS = UploadOptions

    refuse = String(
        validate=Regexp(rf"^({_CODES})(,({_CODES}))*$"),
        metadata={
            "description": "warning codes (comma-separated, or all) that refuse the upload: "
            "422 with the reasons, nothing stored"
        },
    )

    def prepare(self, data: dict) -> dict:
        data["refuse"] = refuse_codes(data.get("refuse"))
        return data


class ItemOptionsIn(ImagesOptionsIn):
    """Options of a new item; ``item_id`` and ``metadata`` come in the body only."""

    BODY_ONLY = ("item_id", "metadata")

    item_id = String(
        validate=Regexp(ITEM_ID_PATTERN), metadata={"description": "default: a new random id"}
    )
    metadata = JSONObject(metadata={"description": "free JSON object, at most 16 KiB"})


class DetectOptionsIn(OptionsIn):
    """Options of detect."""

    OPTIONS = DetectOptions

    top_k = _top_k("top_k")
    verify = _verify()
    min_score = _min_score()
    keep = _keep()
    classes = _classes()
    whole_frame = Boolean(
        load_default=from_setting("whole_frame"),
        metadata={"description": "also match the whole frame (default SIGHTING_WHOLE_FRAME)"},
    )
    labels = _labels()
    prompts = _prompts()
    rank = _rank()
    shortlist = _shortlist()


class SearchOptionsIn(OptionsIn):
    """Options of search."""

    OPTIONS = SearchOptions

    top_k = _top_k("search_top_k")
    verify = _verify()
    min_score = _min_score()
    keep = _keep()
    classes = _classes()
    rank = _rank()
    shortlist = _shortlist()


class StreamOptionsIn(OptionsIn):
    """Options of a stream frame."""

    OPTIONS = StreamOptions

    frame_index = WholeNumber(
        validate=Range(min=0), metadata={"description": "increasing; default: last + 1"}
    )
    top_k = _top_k("top_k")
    verify = _verify()
    keep = _keep()
    classes = _classes()
    labels = _labels()
    prompts = _prompts()


class VideoOptionsIn(OptionsIn):
    """Options of a video."""

    OPTIONS = VideoOptions

    top_k = _top_k("top_k")
    verify = _verify()
    keep = _keep()
    classes = _classes()
    stride = WholeNumber(
        load_default=1, validate=Range(1, 1000), metadata={"description": "every n-th frame"}
    )
    annotate = Boolean(
        load_default=False,
        metadata={
            "description": "also draw the answer on the video (boxes, item, score, verified): "
            "a job (the summary's annotation_job) writes annotated.webm (VP8); videos up to "
            "SIGHTING_MAX_BODY_BYTES (413 beyond)"
        },
    )


class ExplainOptionsIn(OptionsIn):
    """Options of explain."""

    OPTIONS = ExplainOptions
    # a box's x0 < x1, y0 < y1 is more than a schema can say: its pattern is documented (and
    # fuzzed, with the box ordered by the test's hook) in the query string only
    QUERY_DOC_ONLY = ("box",)

    item_id = String(
        required=True, validate=Length(min=1), metadata={"description": "the catalog item"}
    )
    box = Box(
        metadata={
            "description": "x0,y0,x1,y1 pixels of the crop (x0 < x1, y0 < y1); default: the "
            "detection that ranks the item best",
            "pattern": r"^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3}$",
        }
    )
    format = LowerString(
        load_default="png", validate=OneOf(("png", "json")), metadata={"description": "png or json"}
    )
    classes = _classes()


# ------------------------------------------------------------------------ request bodies
class _Body(Schema):
    """A request body documented here and read by `api.inputs` (which ignores other keys)."""

    class Meta:
        unknown = INCLUDE


@cache
def with_options(body: type[Schema], options: type[OptionsIn]) -> type[Schema]:
    """``body`` documented with the operation's options as optional fields beside it (the
    options loader reads them from form fields and JSON keys too)."""
    fields = {}
    for name, field in options._declared_fields.items():
        # a required option is documented in the query string only (where it is looked for
        # first), so that no document says a body without it may omit it from the query
        if name in options.QUERY_DOC_ONLY or field.required:
            continue
        if name not in body._declared_fields:
            fields[name] = copy.copy(field)
    name = body.__name__.replace("Form", "").replace("JSON", "")
    suffix = "Form" if body.__name__.endswith("Form") else "JSON"
    prefix = options.__name__.removesuffix("OptionsIn")
    return type(f"{prefix}{name}{suffix}", (body,), fields)


def _image_list(field: str) -> List:
    return List(
        File(),
        required=True,
        data_key=field,
        validate=Length(min=1),
        metadata={
            "description": "JPEG or PNG files; more than SIGHTING_MAX_IMAGES_PER_REQUEST "
            "in one request is answered 413"
        },
    )


def _base64_image(description: str) -> String:
    """A base64 image: a non-empty string of base64 JPEG or PNG bytes."""
    return String(
        required=True,
        validate=Length(min=1),
        metadata={
            "format": "byte",
            # JSON Schema keywords apispec does not pass for OpenAPI 3.0: `json_keywords`
            "x-contentEncoding": "base64",
            "x-contentMediaType": "image/*",
            "description": description,
        },
    )


class ItemForm(_Body):
    """multipart/form-data of a new item."""

    images = _image_list("images")
    item_id = String(
        validate=Regexp(ITEM_ID_PATTERN),
        metadata={"description": "default: a new random id"},
    )
    metadata = String(metadata={"description": "free JSON object (its JSON text), at most 16 KiB"})


class ImagesForm(_Body):
    """multipart/form-data of more images of an item."""

    images = _image_list("images")


def _base64_images() -> List:
    return List(
        _base64_image("base64 JPEG or PNG (a data: URL prefix is allowed)"),
        required=True,
        validate=Length(min=1),
        metadata={
            "description": "base64 JPEG or PNG images; more than "
            "SIGHTING_MAX_IMAGES_PER_REQUEST is answered 413"
        },
    )


class ItemJSON(_Body):
    """application/json of a new item."""

    images = _base64_images()
    item_id = String(validate=Regexp(ITEM_ID_PATTERN))
    metadata = Dict(metadata={"description": "free JSON object, at most 16 KiB"})


class ImagesJSON(_Body):
    """application/json of more images of an item."""

    images = _base64_images()


class ImageForm(_Body):
    """multipart/form-data with one image."""

    image = File(required=True, metadata={"description": "a JPEG or PNG file"})


class ImageJSON(_Body):
    """application/json with one base64 image."""

    image = _base64_image("base64 JPEG or PNG (data: URL allowed)")


class StreamPath(Schema):
    catalog_id = String(required=True)
    stream_id = String(required=True, validate=Regexp(STREAM_ID_PATTERN))


class StreamHeaders(Schema):
    client = String(
        data_key="X-Stream-Client",
        metadata={"description": "names the sender; another sender on the stream gets 409"},
    )


class StoredVideo(_Body):
    """application/json naming a video of the store (admin key when keys are configured)."""

    key = String(required=True, validate=Regexp(VIDEO_KEY_PATTERN))


# -------------------------------------------------------------------- matching: answers
class Match(Schema):
    item_id = String(required=True)
    image_id = String(required=True, metadata={"description": "the catalog image that matched"})
    similarity = Float(required=True, metadata={"description": "cosine, in [-1, 1]"})
    inliers = Integer(required=True, metadata={"description": "0 when not verified"})
    verified = Boolean(required=True, metadata={"description": "score >= the kind's threshold"})
    score = Float(required=True, metadata={"description": "probability of the same item"})


_BOX = List(Float(), required=True, metadata={"description": "x0, y0, x1, y1 pixels"})


class LabelProbability(Schema):
    label = String(required=True)
    probability = Float(required=True)


class Labels(Schema):
    """The one label shape (labels.result_to_dict)."""

    labels = List(Nested(LabelProbability), required=True)
    top = String(required=True, allow_none=True, metadata={"description": "None: unknown"})
    unknown = Float(required=True, metadata={"description": "probability of none of them"})


class Detection(Schema):
    box = _BOX
    class_ = String(required=True, data_key="class", attribute="class")
    confidence = Float(required=True)
    matches = List(Nested(Match), required=True)
    labels = Nested(
        Labels,
        allow_none=True,
        metadata={"description": "only with labels= or prompts=; null: no crop to label"},
    )


_TIMINGS = Dict(
    keys=String(), values=Float(), required=True, metadata={"description": "ms per stage"}
)


class RankingInfo(Schema):
    """Which ranking produced the answer (docs/local-ranking.md)."""

    method = String(required=True, validate=OneOf(RANKS))
    candidates = Integer(
        required=True, metadata={"description": "candidates keypoints were to rank"}
    )
    checked = Integer(
        required=True, metadata={"description": "of them, compared before the time budget ran out"}
    )
    partial = Boolean(
        required=True,
        metadata={"description": "the budget ran out: the rest keep their embedding order"},
    )


class _MatchAnswer(Schema):
    """What every matching answer carries beside its detections or matches."""

    timings = _TIMINGS
    ranking = Nested(RankingInfo, required=True)
    catalog_version = Integer(required=True)
    calibration = String(
        required=True,
        validate=OneOf(["catalog", "kind_default"]),
        metadata={"description": "whether the catalog's own calibration scored the answer"},
    )
    sighting_ids = List(String(), metadata={"description": "with keep: the sightings kept"})


class DetectResult(_MatchAnswer):
    detections = List(Nested(Detection), required=True)


class SearchResult(_MatchAnswer):
    matches = List(Nested(Match), required=True)


class TrackedDetection(Detection):
    track_id = Integer(required=True, allow_none=True)
    verified_now = Boolean(
        required=True, metadata={"description": "keypoints ran for it on this frame"}
    )


class StreamFrame(Schema):
    stream_id = String(required=True)
    frame_index = Integer(required=True)
    detections = List(Nested(TrackedDetection), required=True)
    timings = _TIMINGS
    catalog_version = Integer(required=True)
    sighting_ids = List(
        String(), metadata={"description": "with keep: sightings kept or updated (one per track)"}
    )


class OpenStream(Schema):
    id = String(required=True)
    catalog = String(required=True)
    frames = Integer(required=True)
    last_frame_index = Integer(required=True, allow_none=True)
    idle_s = Float(required=True)
    last_seen = Float(required=True, metadata={"description": "unix time"})
    tracks = Integer(required=True)
    verify_calls = Integer(required=True)


class StreamList(Schema):
    streams = List(Nested(OpenStream), required=True)


class VideoSummary(Schema):
    frames = Integer(required=True)
    fps = Float(required=True)
    video_fps = Float(required=True)
    verify_calls = Integer(required=True)
    verify_per_frame = Float(required=True)
    seconds = Float(required=True)
    stages_ms = _TIMINGS
    sighting_ids = List(
        String(), metadata={"description": "with keep: the sightings kept, one per track"}
    )
    annotation_job = String(
        metadata={
            "description": "with annotate: the job drawing annotated.webm "
            "(GET /v1/jobs/<id>/files/annotated.webm once it is done)"
        }
    )


class VideoLine(Schema):
    """One ndjson line: a detection of a frame, or the last line ``{"summary": {...}}``."""

    frame = Integer()
    time = Float(metadata={"description": "seconds"})
    track = Integer(allow_none=True)
    box = List(Float())
    class_ = String(data_key="class", attribute="class")
    item = String(allow_none=True, metadata={"description": "best match"})
    score = Float(allow_none=True)
    verified = Boolean()
    verified_now = Boolean()
    summary = Nested(VideoSummary)


class ExplainPair(Schema):
    similarity = Float(required=True)
    inliers = Integer(required=True)
    matches = Integer(required=True)
    spread = Float(required=True)


class Explanation(Schema):
    item_id = String(required=True)
    image_id = String(required=True, metadata={"description": "the catalog image drawn"})
    box = _BOX
    class_ = String(required=True, data_key="class", attribute="class")
    rank = Integer(required=True, allow_none=True)
    score = Float(required=True, allow_none=True)
    verified = Boolean(required=True)
    similarity = Float(required=True, allow_none=True)
    inliers = Integer(required=True, allow_none=True)
    checked = Boolean(required=True)
    pair = Nested(ExplainPair, required=True)
    timings = _TIMINGS
    catalog_version = Integer(required=True)


# ----------------------------------------------------------------------------- health
class Alive(Schema):
    status = String(required=True, metadata={"example": "ok"})


class Ready(Schema):
    status = String(required=True, validate=OneOf(("ready", "not_ready")))
    checks = Dict(required=True, metadata={"example": {"models": True, "store": True}})


# ---------------------------------------------------------------- camera-trap batches
CARDS_PREFIX = CARDS  # cards an operator copied into the store


class AnalyticsIn(Schema):
    """The JSON body of an analytics job."""

    k = WholeNumber(load_default=0, validate=Range(0, 1000), metadata={"description": "0 = choose"})
    choose_by = String(
        load_default="readable",
        validate=OneOf(["readable", "coarse", "silhouette", "ch", "db"]),
        metadata={
            "description": "with k 0, how k is chosen: readable (the most distinct clusters "
            "a person can read, the default), coarse (the first clear peak: fewer, broader "
            "clusters), or silhouette / ch / db over the whole grid"
        },
    )
    method = String(load_default="kmeans", validate=OneOf(["kmeans", "hdbscan"]))
    outlier_z = Float(load_default=3.5, validate=Range(0.0, 100.0))
    duplicate_similarity = Float(load_default=0.97, validate=Range(0.0, 1.0))


class DiscoveryIn(Schema):
    """The JSON body of a discovery run (every field optional; no other keys)."""

    class Meta:
        unknown = RAISE

    trap_job = String(
        validate=Regexp(r"^[a-z0-9]{12}$"),
        metadata={
            "description": "group this finished camera-trap batch's unmatched animals "
            "instead of the catalog's sightings"
        },
    )
    min_score = Float(
        validate=Range(0.0, 1.0),
        metadata={
            "description": "pair score that joins two photos (default: the kind's "
            "calibration threshold, what 'verified' means)"
        },
    )
    max_score = Float(
        validate=Range(0.0, 1.0),
        metadata={
            "description": "an unreviewed photo whose best match scored below this is "
            "unknown (default SIGHTING_DISCOVERY_MAX_SCORE)"
        },
    )


class ProposalListIn(Schema):
    """Query of a proposal listing."""

    state = String(
        validate=OneOf(PROPOSAL_STATES), metadata={"description": "open, accepted, rejected"}
    )


class ProposalMember(Schema):
    ref = String(required=True, metadata={"description": "sighting id, or <file>#<detection>"})
    source = String(required=True, metadata={"description": "sighting or trap"})
    file_name = String(required=True)
    camera = String(required=True)
    time = String(required=True)
    crop_url = String(required=True)
    sighting_url = String(required=True, allow_none=True)


class ProposalLink(Schema):
    a = String(required=True)
    b = String(required=True)
    similarity = Float(required=True)
    inliers = Integer(required=True)
    score = Float(required=True)


class ProposalOut(Schema):
    id = String(required=True)
    catalog_id = String(required=True)
    job_id = String(required=True)
    created_at = String(required=True)
    members = List(Nested(ProposalMember), required=True)
    links = List(Nested(ProposalLink), required=True)
    score = Float(required=True, metadata={"description": "its weakest verified link"})
    state = String(required=True)
    item_id = String(required=True, allow_none=True)
    decided_by = String(required=True, allow_none=True)
    decided_at = String(required=True, allow_none=True)
    split_from = String(required=True, allow_none=True)


class ProposalList(Schema):
    proposals = List(Nested(ProposalOut), required=True)


class AcceptIn(Schema):
    class Meta:
        unknown = RAISE

    item_id = String(
        validate=Regexp(ITEM_ID_PATTERN),
        metadata={"description": "the new item's id (default: drawn)"},
    )
    metadata = Dict(metadata={"description": "the new item's metadata"})


class AcceptedOut(Schema):
    proposal = Nested(ProposalOut, required=True)
    item_id = String(required=True)
    images = Integer(required=True)
    skipped = List(String(), required=True)
    catalog_version = Integer(required=True)


class SplitIn(Schema):
    class Meta:
        unknown = RAISE

    members = List(
        String(validate=Length(1, 300)),
        required=True,
        validate=Length(1, 10_000),
        metadata={"description": "refs of the members that become their own proposal"},
    )


#: The split body, required (``@bp.input`` leaves a JSON body optional in the document, and
#: schemathesis then sends none)
SPLIT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["members"],
                "additionalProperties": False,
                "properties": {
                    "members": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": 300},
                        "minItems": 1,
                        "maxItems": 10_000,
                        "description": "refs of the members that become their own proposal",
                    }
                },
            }
        }
    },
}


class SplitOut(Schema):
    proposal = Nested(ProposalOut, required=True)
    split_off = Nested(ProposalOut, required=True)


class BatchOptionsIn(OptionsIn):
    """Options of a batch."""

    OPTIONS = BatchOptions

    catalog = String(
        validate=Regexp(CATALOG_ID_PATTERN),
        metadata={"description": "catalog of known individuals"},
    )
    labels = _labels()
    prompts = _prompts()
    kind = String(load_default="animals", validate=OneOf(KINDS))
    threshold = Float(
        load_default=from_setting("det_conf"),
        validate=Range(0.0, 1.0),
        metadata={"description": "animal score that means present (default SIGHTING_DET_CONF)"},
    )
    top_k = WholeNumber(
        load_default=TrapConfig.top_k,
        validate=Range(1, 20),
        metadata={"description": "known individuals per animal"},
    )
    verify = Boolean(load_default=True, metadata={"description": "keypoint-verify individuals"})
    draw = Boolean(load_default=True, metadata={"description": "photos/<name>.jpg per animal"})
    keep = _keep()


#: multipart/form-data of a batch: photo files, or one zip, or both (at least one of them;
#: a hand-written schema, as marshmallow cannot say "at least one of". Tried: a marshmallow
#: BatchForm under "allOf" with this "anyOf" beside it; schemathesis then no longer sees the
#: binary formats through the $ref and sends the zip as a plain form field, which is no file)
BATCH_FORM = {
    "type": "object",
    "properties": {
        "photos": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "minItems": 1,
            "description": "photo files (JPEG, PNG...)",
        },
        "archive": {
            "type": "string",
            "format": "binary",
            "contentMediaType": "application/zip",
            "description": "a zip of the card's photos (folders kept)",
        },
    },
    "anyOf": [{"required": ["photos"]}, {"required": ["archive"]}],
}


class BatchJSON(_Body):
    """application/json naming a card already in the store (admin key when keys are set)."""

    prefix = String(
        required=True,
        validate=Length(min=len(CARDS_PREFIX) + 1, max=1024),
        metadata={"description": f"store prefix under {CARDS_PREFIX!r}, e.g. cards/2026-11/cam3/"},
    )


# ------------------------------------------------------------------------------- docs
MATCH_ERRORS = {  # the error answers of every matching operation
    409: "the catalog was indexed with another embedder: re-index it",
    413: "image over the pixel limit",
    415: "not an image",
    422: "corrupt image or bad option",
}


_KEYWORDS = ("contentEncoding", "contentMediaType")


def json_keywords(spec: Any) -> Any:
    """The API document with ``x-contentEncoding`` / ``x-contentMediaType`` written as the
    JSON Schema keywords they stand for (an APIFlask spec processor)."""
    if isinstance(spec, dict):
        for key in _KEYWORDS:
            if f"x-{key}" in spec:
                spec[key] = spec.pop(f"x-{key}")
        for value in spec.values():
            json_keywords(value)
    elif isinstance(spec, list):
        for value in spec:
            json_keywords(value)
    return spec


def binary() -> dict:
    """The media type object of a raw (non-JSON) body or answer: bytes."""
    return {"schema": {"type": "string", "format": "binary"}}


def image_body(
    form: type[Schema], json: type[Schema], options: type[OptionsIn] | None = None
) -> dict:
    """The request body of the image routes: raw JPEG/PNG, multipart or JSON base64; the
    multipart and JSON bodies list the operation's ``options`` beside the image(s)."""
    if options is not None:
        form, json = with_options(form, options), with_options(json, options)
    content = {t: binary() for t in IMAGE_TYPES}
    content["multipart/form-data"] = {"schema": form}
    content["application/json"] = {"schema": json}
    return {"required": True, "content": content}


def v1_doc(
    bp: APIBlueprint,
    operation_id: str,
    errors: dict[int, str],
    *,
    body: dict | None = None,
    responses: dict[int, dict] | None = None,
):
    """``@bp.doc`` of a ``/v1`` operation: its id, the API-key security, its error answers
    (every one in the `Error` shape; 401 and 404 are added by APIFlask), more answers and its
    request body (several media types, which ``@bp.input`` cannot declare)."""
    answers: dict[int, Any] = {503: "models busy (Retry-After) or the store unavailable"}
    answers |= errors
    answers |= responses or {}
    return bp.doc(
        operation_id=operation_id,
        security=API_KEY,
        responses=answers,
        extensions={"requestBody": body} if body else None,
    )

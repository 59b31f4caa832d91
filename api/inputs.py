"""Reading images and options out of requests: raw bodies, multipart forms and JSON base64.

Every image is decoded here, at the edge, with the configured limits, so routes receive
``uint8 (H, W, 3) RGB`` arrays or a typed error (413/415/422) with a message.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import numpy as np
from flask import request

from core.errors import BadInput, TooLarge, UnsupportedMedia
from core.images import decode_image
from core.settings import Settings

RAW_TYPES = ("image/", "application/octet-stream")


@dataclass
class UploadedImage:
    """One decoded upload: the original bytes (stored as they came) and its pixels."""

    data: bytes
    content_type: str
    pixels: np.ndarray  # uint8 (H, W, 3) RGB


def _content_type(data: bytes, declared: str | None) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return declared if declared and declared.startswith("image/") else "application/octet-stream"


def _decode(data: bytes, declared: str | None, settings: Settings, what: str) -> UploadedImage:
    try:
        pixels = decode_image(data, max_pixels=settings.max_image_pixels)
    except (BadInput, UnsupportedMedia, TooLarge) as exc:
        raise type(exc)(f"{what}: {exc.message}") from None
    return UploadedImage(data, _content_type(data, declared), pixels)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise BadInput(f"{what}: expected a base64 string")
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{what}: not valid base64") from None


def json_body() -> dict:
    """The request's JSON object, or {} when the body is not JSON."""
    if not request.is_json:
        return {}
    body = request.get_json(silent=True)
    if body is None:
        raise BadInput("the body is not valid JSON")
    if not isinstance(body, dict):
        raise BadInput("the JSON body must be an object")
    return body


def read_images(settings: Settings, *, field: str, many: bool) -> list[UploadedImage]:
    """The images of the current request.

    Accepts a raw ``image/*`` body, multipart files in ``field``, or JSON with ``field`` set to
    a base64 string (or a list of them when ``many``).

    Raises:
        BadInput: no image, empty body or bad base64 (422). UnsupportedMedia: other types (415).
        TooLarge: more images than allowed, or an image over the pixel limit (413).
    """
    ctype = (request.mimetype or "").lower()
    if ctype.startswith("multipart/form-data"):
        files = [f for f in request.files.getlist(field) if f.filename or f.mimetype]
        if not files:
            raise BadInput(f"multipart body has no file in field {field!r}")
        raws = [(f.read(), f.mimetype, f"{field}[{i}] ({f.filename})") for i, f in enumerate(files)]
    elif request.is_json:
        value = json_body().get(field)
        values = value if isinstance(value, list) and many else [value]
        if value is None or value == []:
            raise BadInput(f"JSON body has no {field!r} (base64 image{'s' if many else ''})")
        raws = [(_b64(v, f"{field}[{i}]"), None, f"{field}[{i}]") for i, v in enumerate(values)]
    elif ctype.startswith(RAW_TYPES):
        raws = [(request.get_data(cache=False), ctype, "body")]
    elif not ctype and not request.content_length:
        raise BadInput("empty body: send an image (image/jpeg, image/png), multipart or JSON")
    else:
        raise UnsupportedMedia(
            f"content type {ctype or 'none'!r} is not accepted: send image/jpeg, image/png, "
            f"multipart/form-data with field {field!r}, or JSON with base64"
        )
    if not many and len(raws) > 1:
        raise BadInput(f"send one image in {field!r}, got {len(raws)}")
    if len(raws) > settings.max_images_per_request:
        raise TooLarge(
            f"{len(raws)} images in one request; the limit is {settings.max_images_per_request}"
        )
    return [_decode(data, declared, settings, what) for data, declared, what in raws]


def option(name: str, cast, default, *, lo=None, hi=None):
    """An option from the query string, form fields or JSON body (first found), range-checked."""
    raw = request.args.get(name)
    if raw is None and request.form:
        raw = request.form.get(name)
    if raw is None and request.is_json:
        raw = json_body().get(name)
    if raw is None or raw == "":
        return default
    try:
        if cast is bool:
            value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        else:
            value = cast(raw)
    except (TypeError, ValueError):
        raise BadInput(f"option {name!r}: {raw!r} is not a {cast.__name__}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadInput(f"option {name!r} must be between {lo} and {hi}, got {value}")
    return value


def classes_option() -> tuple[str, ...] | None:
    """The ``classes`` filter: a comma-separated string or a JSON list of class names."""
    raw = request.args.get("classes") or (request.form.get("classes") if request.form else None)
    if raw is None and request.is_json:
        raw = json_body().get("classes")
    if not raw:
        return None
    names = raw if isinstance(raw, list) else str(raw).split(",")
    return tuple(str(n).strip() for n in names if str(n).strip())


def metadata_option() -> dict:
    """Free item metadata: a JSON object given as form field / JSON key ``metadata``."""
    raw = request.form.get("metadata") if request.form else None
    if raw is None and request.is_json:
        body = json_body()
        if "metadata" in body and not isinstance(body["metadata"], dict):
            raise BadInput("metadata must be a JSON object")  # in JSON, the object itself
        raw = body.get("metadata")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadInput(f"metadata is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadInput("metadata must be a JSON object")
    if len(json.dumps(raw)) > 16_384:
        raise TooLarge("metadata is larger than 16 KiB")
    return raw

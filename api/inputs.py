"""Reading images out of requests: raw bodies, multipart forms and JSON base64.

Every image is decoded here, at the edge, with the configured limits, so routes receive
``uint8 (H, W, 3) RGB`` arrays (`service.options.UploadedImage`) or a typed error
(413/415/422) with a message. Options are read by `api.options`.
"""

from __future__ import annotations

import base64
import binascii

from flask import request

from core.errors import BadInput, TooLarge, UnsupportedMedia
from core.images import decode_image
from core.settings import Settings
from service.options import UploadedImage

RAW_TYPES = ("image/", "application/octet-stream")


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

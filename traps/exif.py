"""When and with which camera a photo was taken, from its EXIF header (if it has one)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_MAKE, _MODEL = 0x010F, 0x0110


@dataclass(frozen=True)
class PhotoMeta:
    """What the header says; empty strings where it says nothing.

    Attributes:
        time: ``YYYY-MM-DD HH:MM:SS`` (camera local time, as EXIF stores it).
        camera: ``"<make> <model>"``.
    """

    time: str = ""
    camera: str = ""


def _clean(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip() if value is not None else ""


def read_meta(data: bytes) -> PhotoMeta:
    """EXIF time (DateTimeOriginal, else DateTime) and camera of encoded image bytes.

    Never raises: a photo without EXIF, or with a broken header, gives an empty `PhotoMeta`.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            exif = img.getexif()
            sub = exif.get_ifd(_EXIF_IFD)
            when = _clean(sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME))
            make, model = _clean(exif.get(_MAKE)), _clean(exif.get(_MODEL))
    except Exception:  # PIL raises many types on broken headers; metadata is optional
        return PhotoMeta()
    if len(when) >= 19 and when[4] == ":" and when[7] == ":":
        when = f"{when[:4]}-{when[5:7]}-{when[8:10]}{when[10:19]}"
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return PhotoMeta(when, camera)

"""Decoding untrusted image bytes into RGB arrays, with checks that cannot be switched off.

Every image that enters Sighting (an upload, a frame, a catalog photo on disk) goes through
`decode_image`: the size is read from the header *before* pixels are decoded, so a
40000x40000 image is refused without allocating it, and every mode PIL reads (grayscale,
RGBA, palette, 16-bit, CMYK) comes out as ``uint8 (H, W, 3) RGB``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import BadInput, TooLarge, UnsupportedMedia

# Sighting checks pixel counts itself (with a clear error), so PIL's own bomb guard is off.
Image.MAX_IMAGE_PIXELS = None

#: Formats accepted from clients. Others (e.g. PDF, EPS) are refused even if PIL reads them.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})

DEFAULT_MAX_PIXELS = 50_000_000

#: Leading bytes of the accepted formats (a file starting so is an image, maybe a broken one).
IMAGE_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF",
    b"BM",
    b"GIF8",
    b"II*\x00",
    b"MM\x00*",
)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes.

    Args:
        data: the encoded file (JPEG, PNG, WebP, BMP, TIFF, GIF: first frame).
        max_pixels: refuse images with more pixels than this (width * height).

    Returns:
        uint8 (H, W, 3) RGB, EXIF orientation applied.

    Raises:
        BadInput: empty, truncated or corrupt data, or a zero-sized image (422).
        UnsupportedMedia: the bytes are not an image format Sighting reads (415).
        TooLarge: more than ``max_pixels`` pixels (413).
    """
    if not data:
        raise BadInput("empty image: the body has no bytes")
    try:
        # only the accepted formats' decoders are tried (no optional plugins, e.g. HEIF)
        img = Image.open(io.BytesIO(data), formats=sorted(ACCEPTED_FORMATS - {"MPO"}))
    except (UnidentifiedImageError, ImportError):  # ImportError: ultralytics' HEIF hook
        if data.startswith(IMAGE_MAGIC):  # a known format whose header is broken or zero-sized
            raise BadInput(
                "corrupt image: its header cannot be read (damaged or 0 pixels)"
            ) from None
        raise UnsupportedMedia(
            "not an image Sighting can read (expected JPEG, PNG, WebP, BMP, TIFF or GIF)"
        ) from None
    except Exception as exc:  # PIL raises many types on garbage headers
        raise BadInput(f"corrupt image header: {exc}") from None
    if img.format not in ACCEPTED_FORMATS:
        raise UnsupportedMedia(f"image format {img.format} is not accepted")
    width, height = img.size
    if width <= 0 or height <= 0:
        raise BadInput(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise TooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"corrupt or truncated image: {exc}") from None
    return to_rgb(img)


def to_rgb(img: Image.Image) -> np.ndarray:
    """Convert a loaded PIL image of any mode to ``uint8 (H, W, 3) RGB``."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0
        scale = 255.0 / hi if hi > 255 else 1.0
        arr8 = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return np.repeat(arr8[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def check_rgb(image: object, name: str = "image", *, grey: bool = False) -> np.ndarray:
    """The one check of an image array handed to a model: ``uint8 (H, W, 3)`` with H, W > 0.

    Args:
        image: the array to check.
        name: what the messages call it (e.g. ``"frame 3"``).
        grey: also accept grey ``(H, W)`` or ``(H, W, 1)`` (night infrared frames), returned
            with the one channel repeated three times.

    Returns:
        ``image`` itself (or its three-channel copy, for grey).

    Raises:
        BadInput: not a uint8 numpy array, or not of one of those shapes.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise BadInput(f"{name}: expected a uint8 numpy array, got {got}")
    if grey and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)):
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise BadInput(f"{name}: expected shape (H, W, 3) RGB, got {image.shape}")
    return image


def long_side_size(h: int, w: int, side: int) -> tuple[int, int]:
    """``(h', w')``: an ``(h, w)`` image scaled, keeping its aspect, to a long side of ``side``
    (each side at least 1 px)."""
    scale = side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_long_side(
    image: np.ndarray, side: int, *, enlarge: bool = False
) -> tuple[np.ndarray, tuple[float, float]]:
    """Resize an image to a long side of ``side`` px, keeping its aspect (OpenCV: area
    averaging to shrink, bicubic to enlarge).

    Args:
        image: uint8 (H, W) or (H, W, C).
        side: the long side wanted; <= 0 keeps the size.
        enlarge: also enlarge a smaller image (default: only shrink a larger one).

    Returns:
        The image uint8 (h, w[, C]) (``image`` itself when kept) and the scale
        ``(W / w, H / h)`` back to the original.
    """
    h, w = image.shape[:2]
    long_side = max(h, w)
    if side <= 0 or long_side == side or (long_side < side and not enlarge):
        return image, (1.0, 1.0)
    new_h, new_w = long_side_size(h, w, side)
    interpolation = cv2.INTER_AREA if long_side > side else cv2.INTER_CUBIC
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return resized, (w / new_w, h / new_h)


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file; see `decode_image`. Returns uint8 (H, W, 3) RGB."""
    return decode_image(Path(path).read_bytes(), max_pixels=max_pixels)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode ``uint8 (H, W, 3) RGB`` as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """Encode ``uint8 (H, W, 3) RGB`` as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (hidden files skipped)."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )

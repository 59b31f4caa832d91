"""Image decoding: every mode comes out as uint8 RGB; bad bytes get typed errors, not crashes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.errors import BadInput, TooLarge, UnsupportedMedia
from core.images import (
    check_rgb,
    decode_image,
    encode_jpeg,
    encode_png,
    long_side_size,
    resize_long_side,
)
from tests.images import png_header_only


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


RGB = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _encode(Image.fromarray(RGB), "JPEG"), id="jpeg-rgb"),
        pytest.param(lambda: _encode(Image.fromarray(RGB), "PNG"), id="png-rgb"),
        pytest.param(lambda: _encode(Image.fromarray(RGB[..., 0]), "PNG"), id="grayscale"),
        pytest.param(lambda: _encode(Image.fromarray(RGB).convert("RGBA"), "PNG"), id="rgba"),
        pytest.param(lambda: _encode(Image.fromarray(RGB).convert("P"), "PNG"), id="palette"),
        pytest.param(
            lambda: _encode(Image.fromarray(RGB[..., 0].astype(np.uint16) * 257), "PNG"),
            id="16-bit",
        ),
        pytest.param(lambda: _encode(Image.fromarray(RGB).convert("CMYK"), "JPEG"), id="cmyk"),
        pytest.param(lambda: _encode(Image.fromarray(RGB), "WEBP"), id="webp"),
    ],
)
def test_every_mode_decodes_to_uint8_rgb(make) -> None:
    out = decode_image(make())
    assert out.dtype == np.uint8
    assert out.shape == (24, 32, 3)


def test_colours_survive_png_round_trip() -> None:
    np.testing.assert_array_equal(decode_image(encode_png(RGB)), RGB)


def test_rgba_transparent_becomes_white() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out == 255).all()


JPEG = encode_jpeg(RGB)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", BadInput),  # empty body
        (b"hello, this is text and not an image", UnsupportedMedia),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", UnsupportedMedia),
        (JPEG[: len(JPEG) // 2], BadInput),  # truncated
        (JPEG[:20], BadInput),  # header only
        (png_header_only(40_000, 40_000), TooLarge),  # refused before decoding
        (png_header_only(0, 10), BadInput),  # zero pixels wide
        (png_header_only(0, 0), BadInput),  # zero pixels
    ],
    ids=["empty", "text", "pdf", "truncated-jpeg", "jpeg-header", "40000x40000", "0x10", "0x0"],
)
def test_bad_bytes_get_typed_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_image(data)


def test_pixel_limit_is_a_setting() -> None:
    with pytest.raises(TooLarge, match="32x24"):
        decode_image(encode_png(RGB), max_pixels=100)


def test_http_statuses_of_image_errors() -> None:
    assert (BadInput.status, UnsupportedMedia.status, TooLarge.status) == (422, 415, 413)


@pytest.mark.parametrize(
    ("image", "grey", "error"),
    [
        (np.zeros((4, 5, 3), np.uint8), False, None),
        (np.zeros((4, 5), np.uint8), True, None),  # grey: three equal channels
        (np.zeros((4, 5, 1), np.uint8), True, None),
        (np.zeros((4, 5), np.uint8), False, "shape"),  # grey refused unless asked for
        (np.zeros((4, 5, 3), np.float32), False, "uint8"),
        ([[0, 0, 0]], True, "uint8"),  # not an array
        (np.zeros((0, 5, 3), np.uint8), False, "shape"),
        (np.zeros((4, 5, 4), np.uint8), True, "shape"),  # RGBA
    ],
)
def test_check_rgb(image, grey: bool, error: str | None) -> None:
    if error is None:
        out = check_rgb(image, "frame 2", grey=grey)
        assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    else:
        with pytest.raises(BadInput, match=f"frame 2: .*{error}"):
            check_rgb(image, "frame 2", grey=grey)


@pytest.mark.parametrize(
    ("shape", "side", "enlarge", "expected"),
    [
        ((100, 200, 3), 50, False, (25, 50, 3)),
        ((100, 200, 3), 400, False, (100, 200, 3)),  # never enlarged unless asked
        ((100, 200, 3), 400, True, (200, 400, 3)),
        ((100, 200, 3), 0, True, (100, 200, 3)),  # <= 0 keeps the size
        ((1, 300), 30, False, (1, 30)),  # at least 1 px
    ],
)
def test_resize_long_side(shape: tuple, side: int, enlarge: bool, expected: tuple) -> None:
    image = np.full(shape, 7, np.uint8)
    out, (sx, sy) = resize_long_side(image, side, enlarge=enlarge)
    assert out.shape == expected and out.dtype == np.uint8
    assert (sx, sy) == (shape[1] / expected[1], shape[0] / expected[0])


def test_long_side_size_keeps_the_aspect_and_one_pixel() -> None:
    assert long_side_size(100, 200, 50) == (25, 50)
    assert long_side_size(300, 200, 150) == (150, 100)
    assert long_side_size(1, 1000, 10) == (1, 10)  # 0.01 px rounds up to 1

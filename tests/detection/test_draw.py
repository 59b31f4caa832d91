"""`draw_detections` draws on a copy and never touches the caller's image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import BadInput
from core.images import read_image
from detection.draw import draw_detections, label_color


@pytest.fixture(scope="module")
def image(ultralytics_assets: Path) -> np.ndarray:
    return read_image(ultralytics_assets / "zidane.jpg")[::4, ::4].copy()


def test_draws_on_a_copy(image: np.ndarray) -> None:
    before = image.copy()
    boxes = np.array([[10, 20, 120, 150], [100, 30, 200, 170]], np.float32)
    out = draw_detections(image, boxes, ["person 0.80", "tie 0.30"])
    np.testing.assert_array_equal(image, before)
    assert out is not image and not np.shares_memory(out, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = (out != image).any(2)
    assert changed[20:150, 10].mean() > 0.9, "left edge of the first box"
    assert not changed[160:, 210:].any(), "nothing outside the boxes and tags"


def test_given_colors_are_used(image: np.ndarray) -> None:
    out = draw_detections(image, np.array([[5, 40, 60, 90]]), [""], colors=[(255, 0, 0)])
    np.testing.assert_array_equal(out[60, 5], [255, 0, 0])


def test_no_boxes_gives_an_equal_copy(image: np.ndarray) -> None:
    out = draw_detections(image, np.empty((0, 4)), [])
    np.testing.assert_array_equal(out, image)
    assert not np.shares_memory(out, image)


def test_label_colors_are_stable() -> None:
    assert label_color("person") == label_color("person")
    assert label_color("person") != label_color("bus")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros((4, 4), np.uint8), np.empty((0, 4)), []), "image"),  # 2-D image
        ((np.zeros((4, 4, 3), np.float32), np.empty((0, 4)), []), "image"),  # floats
        ((np.zeros((4, 4, 3), np.uint8), np.zeros((2, 4)), ["a"]), "labels"),  # count mismatch
    ],
)
def test_bad_arguments(args: tuple, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        draw_detections(*args)

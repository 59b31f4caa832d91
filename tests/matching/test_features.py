"""LocalFeatures validation and serialisation; the geometry helpers of verification."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.errors import BadInput
from matching.features import LocalFeatures
from matching.geometry import (
    find_homography,
    hull_coverage,
    is_plausible_homography,
    resize_long_side,
    to_original,
)


def _features(k: int = 10, d: int = 128, seed: int = 0) -> LocalFeatures:
    rng = np.random.default_rng(seed)
    return LocalFeatures(
        rng.uniform(0, 300, (k, 2)),
        rng.normal(size=(k, d)),
        rng.uniform(0, 1, k),
        (240, 320),
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"keypoints": np.zeros((5, 3))}, "keypoints"),  # not (K, 2)
        ({"descriptors": np.zeros((4, 128))}, "descriptors"),  # K differs
        ({"descriptors": np.zeros(5)}, "descriptors"),  # not 2-D
        ({"scores": np.zeros(6)}, "scores"),  # K differs
        ({"image_size": (0, 10)}, "image_size"),  # no pixels
        ({"image_size": (10,)}, "image_size"),  # not (H, W)
        ({"image": np.zeros((4, 4, 3), np.uint8)}, "image"),  # not grayscale
        ({"image": np.zeros((4, 4), np.float32)}, "image"),  # not uint8
    ],
)
def test_invalid_features_are_refused(kwargs: dict, fragment: str) -> None:
    args = {
        "keypoints": np.zeros((5, 2)),
        "descriptors": np.zeros((5, 128)),
        "scores": np.zeros(5),
        "image_size": (10, 10),
    } | kwargs
    with pytest.raises(BadInput, match=fragment):
        LocalFeatures(**args)


def test_arrays_are_float32_and_len_counts_keypoints() -> None:
    f = _features(7, 64)
    assert len(f) == 7 and f.dim == 64 and not f.is_dense
    assert f.keypoints.dtype == f.descriptors.dtype == f.scores.dtype == np.float32


@pytest.mark.parametrize("dim", [128, 256])
def test_empty(dim: int) -> None:
    f = LocalFeatures.empty(dim)
    assert len(f) == 0
    assert (
        f.keypoints.shape == (0, 2) and f.descriptors.shape == (0, dim) and f.scores.shape == (0,)
    )


def test_round_trip_keeps_values_and_halves_descriptors() -> None:
    f = _features(500, 128)
    data = f.to_bytes()
    g = LocalFeatures.from_bytes(data)
    np.testing.assert_array_equal(g.keypoints, f.keypoints)
    np.testing.assert_array_equal(g.scores, f.scores)
    np.testing.assert_allclose(g.descriptors, f.descriptors, rtol=1e-3, atol=1e-3)
    assert g.image_size == f.image_size and g.image is None
    assert g.descriptors.dtype == np.float32
    # float16 descriptors: well under the float32 size of the descriptors alone
    assert len(data) < f.descriptors.nbytes * 0.6


@pytest.mark.parametrize("features", [LocalFeatures.empty(128, (5, 7)), None])
def test_round_trip_empty_and_dense(features: LocalFeatures | None) -> None:
    if features is None:  # dense (LoFTR) features: the preprocessed grayscale image
        image = np.random.default_rng(1).integers(0, 255, (48, 64), dtype=np.uint8)
        features = LocalFeatures.dense(image, (480, 640))
    g = LocalFeatures.from_bytes(features.to_bytes())
    assert len(g) == len(features) and g.image_size == features.image_size
    assert g.descriptors.shape == features.descriptors.shape
    assert g.is_dense == features.is_dense
    if features.image is not None:
        np.testing.assert_array_equal(g.image, features.image)


@pytest.mark.parametrize("data", [b"", b"not an npz", _features().to_bytes()[:100]])
def test_corrupt_bytes_raise_bad_input(data: bytes) -> None:
    with pytest.raises(BadInput):
        LocalFeatures.from_bytes(data)


# --- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "max_side", "expected"),
    [
        ((640, 800, 3), 400, (320, 400)),  # shrunk, aspect kept
        ((198, 198, 3), 512, (198, 198)),  # never enlarged
        ((300, 100), 150, (150, 50)),  # grayscale, portrait
        ((300, 100), 0, (300, 100)),  # 0 = keep
    ],
)
def test_resize_long_side(shape: tuple, max_side: int, expected: tuple) -> None:
    image = np.zeros(shape, np.uint8)
    small, (sx, sy) = resize_long_side(image, max_side)
    assert small.shape[:2] == expected and small.ndim == image.ndim
    assert sx == pytest.approx(shape[1] / expected[1]) and sy == pytest.approx(
        shape[0] / expected[0]
    )


def test_to_original_maps_pixel_centres_and_edges() -> None:
    # a 2x downscale: resized pixel 0 covers original pixels 0..1 (centre 0.5); edges map to edges
    pts = np.array([[0.0, 0.0], [-0.5, -0.5], [99.5, 49.5]])
    out = to_original(pts, (2.0, 2.0))
    np.testing.assert_allclose(out, [[0.5, 0.5], [-0.5, -0.5], [199.5, 99.5]])


def test_find_homography_recovers_a_known_homography_despite_outliers() -> None:
    rng = np.random.default_rng(0)
    h_true = np.array([[0.9, 0.1, 20.0], [-0.05, 1.1, 5.0], [1e-4, 2e-4, 1.0]])
    src = rng.uniform(0, 300, (200, 2))
    dst = cv2.perspectiveTransform(src[None], h_true)[0] + rng.normal(0, 0.5, (200, 2))
    dst[:60] = rng.uniform(0, 300, (60, 2))  # 30 % outliers
    h, mask = find_homography(
        src, dst, method=cv2.USAC_MAGSAC, threshold=3.0, confidence=0.999, max_iters=2000
    )
    assert h is not None and h.shape == (3, 3) and h.dtype == np.float64
    assert mask.dtype == bool and mask[60:].mean() > 0.9 and mask[:60].mean() < 0.1
    np.testing.assert_allclose(h / h[2, 2], h_true, rtol=0.05, atol=0.5)


def test_find_homography_needs_four_points() -> None:
    h, mask = find_homography(
        np.zeros((3, 2)),
        np.zeros((3, 2)),
        method=cv2.USAC_MAGSAC,
        threshold=3.0,
        confidence=0.99,
        max_iters=100,
    )
    assert h is None and mask.shape == (3,) and not mask.any()


@pytest.mark.parametrize(
    ("h", "plausible"),
    [
        (np.eye(3), True),
        (np.diag([0.5, 0.5, 1.0]), True),  # zoom out 2x
        (np.diag([-1.0, 1.0, 1.0]), False),  # mirrored
        (np.diag([1e-3, 1e-3, 1.0]), False),  # collapses the image
        (np.full((3, 3), np.nan), False),
    ],
)
def test_is_plausible_homography(h: np.ndarray, plausible: bool) -> None:
    assert is_plausible_homography(h) is plausible


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([[0, 0], [100, 0], [100, 50], [0, 50]], 1.0),  # the whole image
        ([[0, 0], [50, 0], [50, 25], [0, 25]], 0.25),  # a quarter
        ([[0, 0], [10, 10]], 0.0),  # too few for an area
        ([[-50, -50], [200, -50], [200, 100], [-50, 100]], 1.0),  # clipped to the image
    ],
)
def test_hull_coverage(points: list, expected: float) -> None:
    assert hull_coverage(np.array(points, np.float32), (50, 100)) == pytest.approx(expected)

"""Keypoint verification with the real offline weights on real photos (HPatches graffiti, grocery).

Images are downscaled (``max_side`` 384) to keep the module fast on 2 CPU cores. HPatches gives
ground-truth homographies H_1_k (image 1 -> image k, original pixels), so the estimated
homography is checked where it matters: where it sends the image corners.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from kornia.feature import LoFTR

from core.errors import BadInput, ModelUnavailable
from core.images import read_image
from core.settings import Settings
from matching.backends.lightglue import LightGlueBackend
from matching.backends.loftr import LoftrBackend
from matching.draw_matches import draw_matches
from matching.features import LocalFeatures
from matching.verification import VERIFIERS, build_verifier, load_verifier, verifier_from_weights
from matching.verifier import MatchResult, Verifier, VerifierConfig

CONFIG = VerifierConfig(max_side=384)
FILES = {
    "aliked_lightglue": ("aliked-n16.pth", "aliked_lightglue.pth"),
    "disk_lightglue": ("disk-depth-save.pth", "disk_lightglue.pth"),
}


@pytest.fixture(scope="module")
def graffiti(data_dir: Path) -> dict[int, np.ndarray]:
    folder = data_dir / "hpatches-v_graffiti"
    return {k: read_image(folder / f"{k}.jpg") for k in (1, 2, 3)}


@pytest.fixture(scope="module")
def grocery_photo(data_dir: Path) -> np.ndarray:
    return read_image(
        data_dir / "grocery/queries/Arla-Standard-Milk/train__Arla-Standard-Milk_001.jpg"
    )


@pytest.fixture(scope="module")
def aliked(weights_dir: Path) -> Verifier:
    paths = [weights_dir / f for f in FILES["aliked_lightglue"]]
    return verifier_from_weights("aliked_lightglue", paths, "cpu", CONFIG)


@pytest.fixture(scope="module")
def aliked_features(aliked: Verifier, graffiti: dict) -> dict[int, LocalFeatures]:
    return dict(zip(graffiti, aliked.extract_batch(list(graffiti.values())), strict=True))


def _ground_truth(data_dir: Path, k: int) -> np.ndarray:
    return np.loadtxt(data_dir / f"hpatches-v_graffiti/H_1_{k}")


def _corner_error(h_est: np.ndarray, h_true: np.ndarray, shape: tuple) -> float:
    """Largest distance (original pixels) between where the two homographies send the corners."""
    h, w = shape[:2]
    corners = np.array([[[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]], np.float64)
    diff = cv2.perspectiveTransform(corners, h_est) - cv2.perspectiveTransform(corners, h_true)
    return float(np.linalg.norm(diff, axis=2).max())


def test_features_are_in_original_pixels(aliked_features: dict, graffiti: dict) -> None:
    f = aliked_features[1]
    h, w = graffiti[1].shape[:2]
    assert f.image_size == (h, w)
    assert 100 <= len(f) <= CONFIG.max_keypoints and f.dim == 128
    # extracted at 384 px, yet spread over the whole 800 x 640 original
    assert f.keypoints[:, 0].min() >= -0.5 and f.keypoints[:, 0].max() <= w - 0.5
    assert f.keypoints[:, 1].max() <= h - 0.5 and f.keypoints[:, 0].max() > 0.8 * w


@pytest.mark.parametrize(
    ("k", "min_inliers"),
    [
        (2, 150),  # small viewpoint change
        (3, 100),  # larger viewpoint change
    ],
)
def test_aliked_lightglue_recovers_the_true_homography(
    aliked: Verifier,
    aliked_features: dict,
    graffiti: dict,
    data_dir: Path,
    k: int,
    min_inliers: int,
) -> None:
    result = aliked.match(aliked_features[1], aliked_features[k])
    assert result.inliers >= min_inliers
    assert result.inlier_ratio > 0.8 and 0.2 < result.spread <= 1.0
    assert result.homography is not None and result.homography.dtype == np.float64
    # ~2 px at 384 px is ~4 px in the 800 px original
    error = _corner_error(result.homography, _ground_truth(data_dir, k), graffiti[1].shape)
    assert error < 10.0
    m = result.matches
    assert result.query_points.shape == result.ref_points.shape == (m, 2)
    assert result.inlier_mask.shape == result.match_scores.shape == (m,)
    assert result.inlier_mask.sum() == result.inliers


def test_unrelated_pair_gives_few_inliers(
    aliked: Verifier, aliked_features: dict, grocery_photo: np.ndarray
) -> None:
    true_pair = aliked.match(aliked_features[1], aliked_features[2])
    wrong = aliked.match(aliked.extract(grocery_photo), aliked_features[1])
    assert wrong.inliers <= 12
    assert wrong.inliers * 10 < true_pair.inliers


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_image_gives_empty_features_and_empty_match(
    aliked: Verifier, aliked_features: dict, value: int
) -> None:
    blank = aliked.extract(np.full((200, 300, 3), value, np.uint8))
    assert len(blank) == 0 and blank.descriptors.shape == (0, 128)
    for query, ref in ((blank, aliked_features[1]), (aliked_features[1], blank)):
        result = aliked.match(query, ref)
        assert result.inliers == result.matches == 0 and result.homography is None
        assert result.query_points.shape == (0, 2) and result.inlier_mask.shape == (0,)


def test_batch_and_single_calls_agree(
    aliked: Verifier, aliked_features: dict, graffiti: dict
) -> None:
    single = aliked.extract(graffiti[2])
    np.testing.assert_allclose(single.keypoints, aliked_features[2].keypoints, atol=1e-3)
    refs = [aliked_features[2], LocalFeatures.empty(128), aliked_features[3]]
    many = aliked.match_many(aliked_features[1], refs)
    assert [r.matches for r in many] == [
        aliked.match(aliked_features[1], ref).matches for ref in refs
    ]
    assert many[1].matches == 0


def test_cached_features_match_like_fresh_ones(aliked: Verifier, aliked_features: dict) -> None:
    cached = LocalFeatures.from_bytes(aliked_features[2].to_bytes())  # float16 descriptors
    fresh = aliked.match(aliked_features[1], aliked_features[2])
    again = aliked.match(aliked_features[1], cached)
    assert abs(again.inliers - fresh.inliers) <= 0.05 * fresh.inliers


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10), np.uint8),  # grayscale
        np.zeros((10, 10, 3), np.float32),  # not uint8
        np.zeros((10, 10, 4), np.uint8),  # RGBA
    ],
)
def test_bad_images_raise_bad_input(aliked: Verifier, image: np.ndarray) -> None:
    with pytest.raises(BadInput):
        aliked.extract(image)


def test_draw_matches_draws_on_a_copy(
    aliked: Verifier, aliked_features: dict, graffiti: dict
) -> None:
    result = aliked.match(aliked_features[1], aliked_features[2])
    query, ref = graffiti[1].copy(), graffiti[2][:400]  # different heights
    picture = draw_matches(query, ref, result)
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert picture.shape[0] == 640 and picture.shape[1] > 800
    np.testing.assert_array_equal(query, graffiti[1])  # input untouched
    green = (picture[..., 1] > 200) & (picture[..., 0] < 80) & (picture[..., 2] < 100)
    assert green.sum() > 1000  # inlier lines


def test_disk_lightglue_loads_and_matches(
    weights_dir: Path, graffiti: dict, data_dir: Path
) -> None:
    paths = {f: weights_dir / f for f in FILES["disk_lightglue"]}
    disk = verifier_from_weights("disk_lightglue", paths, "cpu", VerifierConfig(max_side=320))
    f1, f2 = disk.extract_batch([graffiti[1], graffiti[2]])
    result = disk.match(f1, f2)
    assert result.inliers >= 100
    assert _corner_error(result.homography, _ground_truth(data_dir, 2), graffiti[1].shape) < 12


@pytest.fixture(scope="module")
def loftr_state() -> dict:
    """A randomly initialised LoFTR state dict (the real checkpoint is not available offline)."""
    torch.manual_seed(0)
    return LoFTR(pretrained=None).state_dict()


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd, "epoch": 1},  # kornia's checkpoint layout
        lambda sd: {"state_dict": {f"matcher.{k}": v for k, v in sd.items()}},  # training prefix
        lambda sd: sd,  # a bare state dict
    ],
)
def test_loftr_loads_a_checkpoint_and_returns_match_results(
    tmp_path: Path, graffiti: dict, aliked_features: dict, loftr_state: dict, wrap
) -> None:
    path = tmp_path / "loftr_outdoor.ckpt"
    torch.save(wrap(loftr_state), path)
    loftr = verifier_from_weights("loftr", [path], "cpu", VerifierConfig(max_side=128))
    assert loftr.fingerprint.startswith("loftr-")
    query, ref = loftr.extract_batch([graffiti[1], graffiti[2]])
    assert query.is_dense and query.image.shape == (102, 128) and query.image_size == (640, 800)
    ref = LocalFeatures.from_bytes(ref.to_bytes())  # the cached catalog side
    results = loftr.match_many(query, [ref, query])
    assert len(results) == 2 and all(isinstance(r, MatchResult) for r in results)
    for r in results:
        assert r.query_points.shape == r.ref_points.shape == (r.matches, 2)
        assert 0 <= r.inliers <= r.matches
    with pytest.raises(BadInput):  # keypoint features of another verifier
        loftr.match(aliked_features[1], aliked_features[2])


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint")
    return path


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("aliked_lightglue", lambda w, t: [w / "aliked-n16.pth", t / "missing.pth"]),  # missing
        ("aliked_lightglue", lambda w, t: [w / "aliked-n16.pth", _garbage(t)]),  # corrupt
        ("aliked_lightglue", lambda w, t: [w / "aliked-n16.pth", w / "aliked-n16.pth"]),  # wrong
        ("aliked_lightglue", lambda w, t: [w / "aliked-n16.pth"]),  # too few
        ("disk_lightglue", lambda w, t: {"disk-depth-save.pth": w / "disk-depth-save.pth"}),
        ("loftr", lambda w, t: [t / "loftr_outdoor.ckpt"]),  # the real file is not here
        ("sift_magic", lambda w, t: []),  # unknown verifier
    ],
)
def test_unusable_weights_raise_model_unavailable(
    weights_dir: Path, tmp_path: Path, name: str, files
) -> None:
    with pytest.raises(ModelUnavailable):
        verifier_from_weights(name, files(weights_dir, tmp_path), "cpu")


@pytest.mark.parametrize(
    ("name", "backend"),
    [
        ("aliked_lightglue", LightGlueBackend),
        ("disk_lightglue", LightGlueBackend),
        ("loftr", LoftrBackend),
    ],
)
def test_build_verifier_makes_each_backend_without_weights(name: str, backend: type) -> None:
    verifier = build_verifier(name, VerifierConfig(max_side=64))
    assert isinstance(verifier.backend, backend) and verifier.backend.name == name
    assert verifier.fingerprint == f"{name}-unloaded" and name in VERIFIERS
    features = verifier.extract(np.zeros((48, 80, 3), np.uint8))
    assert features.image_size == (48, 80) and features.is_dense == (name == "loftr")


def test_build_verifier_refuses_an_unknown_name() -> None:
    with pytest.raises(ModelUnavailable, match="unknown verifier"):
        build_verifier("sift_magic")


def test_fingerprint_names_model_files_and_extraction(weights_dir: Path, aliked: Verifier) -> None:
    paths = [weights_dir / f for f in FILES["aliked_lightglue"]]
    again = verifier_from_weights("aliked_lightglue", paths, "cpu", CONFIG)
    other = verifier_from_weights("aliked_lightglue", paths, "cpu", VerifierConfig(max_side=640))
    assert aliked.name == "aliked_lightglue"
    assert again.fingerprint == aliked.fingerprint != other.fingerprint
    assert aliked.fingerprint.startswith("aliked_lightglue-")


@pytest.mark.slow  # the real ALIKED + LightGlue of the shared weights
def test_load_verifier_from_settings(settings: Settings, tmp_path: Path) -> None:
    verifier = load_verifier(settings)
    assert verifier is not None and verifier.name == settings.verifier == "aliked_lightglue"
    assert load_verifier(settings.model_copy(update={"verifier": "none"})) is None
    offline_empty = settings.model_copy(update={"weights_dir": tmp_path, "allow_download": False})
    with pytest.raises(ModelUnavailable, match="aliked-n16.pth"):
        load_verifier(offline_empty)
    with pytest.raises(ModelUnavailable):
        load_verifier(settings.model_copy(update={"verifier": "yolov5n"}))  # not a verifier


def test_resized_moves_points_between_image_sizes() -> None:
    pair = MatchResult(
        inliers=4,
        matches=4,
        inlier_ratio=1.0,
        spread=0.5,
        homography=np.eye(3),
        query_points=np.array([[0, 0], [9.5, 19.5], [4.5, 9.5], [2, 3]], np.float32),
        ref_points=np.array([[0, 0], [99.5, 49.5], [10, 10], [5, 5]], np.float32),
        inlier_mask=np.ones(4, bool),
    )
    assert pair.resized((20, 10), (20, 10), (50, 100), (50, 100)) is pair  # nothing moves
    half = pair.resized((20, 10), (10, 5), (50, 100), (100, 200))
    assert half.homography is None and half.inliers == 4 and half.spread == 0.5
    # pixel centres at integer coordinates: the far image edge (+0.5) stays the edge
    np.testing.assert_allclose(half.query_points[1], [4.5, 9.5])
    np.testing.assert_allclose(half.ref_points[1], [199.5, 99.5])
    np.testing.assert_allclose(half.query_points[0], [-0.25, -0.25])
    assert MatchResult.empty().resized((2, 2), (4, 4), (2, 2), (4, 4)).matches == 0

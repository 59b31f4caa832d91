"""Explanations on real photos: Grad-CAM heat-maps, the composed picture, the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.errors import BadInput, NotFound
from core.images import read_image
from embedding.gradcam import gradcam, overlay_heatmap, target_layer
from matching.catalog_view import CatalogView, FeatureCache
from matching.explain import explain_match, parse_box
from matching.explain import main as explain_main
from matching.folder_catalog import load_folder_catalog

ITEMS = ("Arla-Standard-Milk", "Oatly-Natural-Oatghurt", "Tropicana-Apple-Juice")


@pytest.fixture(scope="module")
def small_catalog(data_dir: Path, tmp_path_factory) -> Path:
    """A folder catalog of three grocery items (their iconic photos)."""
    root = tmp_path_factory.mktemp("explain") / "catalog"
    for item in ITEMS:
        shutil.copytree(data_dir / "grocery" / "catalog" / item, root / item)
    return root


@pytest.fixture(scope="module")
def view(pipeline, small_catalog: Path):
    return load_folder_catalog(pipeline, small_catalog, cache=False, progress=False)


def _query(data_dir: Path, item: str) -> Path:
    return sorted((data_dir / "grocery" / "queries" / item).iterdir())[0]


def _catalog_image(small_catalog: Path, item: str) -> np.ndarray:
    return read_image(next((small_catalog / item).iterdir()))


def _caption_lines(picture_height: int, row_height: int) -> int:
    """Lines of the caption band (24 px each + 8) below two rows and a 4 px gap."""
    band = picture_height - (2 * row_height + 4)
    assert band > 8 and (band - 8) % 24 == 0, picture_height
    return (band - 8) // 24


def test_gradcam_heatmap_has_the_crop_size_and_unit_range(
    pipeline, data_dir: Path, small_catalog: Path
) -> None:
    embedder = pipeline.embedder_for("products")
    crop = read_image(_query(data_dir, ITEMS[0]))[:300, 40:240]  # not square: (300, 200)
    target = embedder.embed([_catalog_image(small_catalog, ITEMS[0])])[0]
    before = embedder.embed([crop])
    heat = gradcam(embedder, crop, target)
    assert heat.shape == (300, 200) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
    assert heat.std() > 0.05  # a map, not a constant
    # the embedder's own path is untouched: no hook left behind, same vectors
    assert not target_layer(embedder.model)._forward_hooks
    np.testing.assert_array_equal(embedder.embed([crop]), before)
    with torch.inference_mode():  # gradients are enabled for the Grad-CAM call itself
        np.testing.assert_allclose(gradcam(embedder, crop, target), heat, atol=1e-5)
    with pytest.raises(BadInput):
        gradcam(embedder, crop, target[:10])


def test_gradcam_marks_what_the_similarity_depends_on(
    pipeline, data_dir: Path, small_catalog: Path
) -> None:
    """Greying out the hottest fifth of the catalog image costs more similarity than greying
    out the coldest fifth (a faithfulness check of the map's direction)."""
    embedder = pipeline.embedder_for("products")
    image = _catalog_image(small_catalog, ITEMS[0])
    target = embedder.embed([read_image(_query(data_dir, ITEMS[0]))])[0]
    heat = gradcam(embedder, image, target)
    hot, cold = image.copy(), image.copy()
    hot[heat >= np.quantile(heat, 0.8)] = (124, 116, 104)  # ~ the ImageNet mean colour
    cold[heat <= np.quantile(heat, 0.2)] = (124, 116, 104)
    base, without_hot, without_cold = embedder.embed([image, hot, cold]) @ target
    assert without_hot < without_cold and without_hot < base - 0.05


def test_overlay_heatmap() -> None:
    image = np.full((40, 60, 3), 128, np.uint8)
    heat = np.zeros((10, 15), np.float32)
    heat[5:, 7:] = 1.0
    out = overlay_heatmap(image, heat)  # the heat-map is resized to the image
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out[35, 55, 0] > out[35, 55, 2] and out[2, 2, 2] > out[2, 2, 0]  # red hot, blue cold
    np.testing.assert_array_equal(overlay_heatmap(image, heat, alpha=0.0), image)
    with pytest.raises(BadInput):
        overlay_heatmap(image, np.zeros(5))


def test_parse_box() -> None:
    np.testing.assert_array_equal(parse_box("1,2,30.5,40"), [1, 2, 30.5, 40])
    np.testing.assert_array_equal(parse_box([0, 0, 5, 5]), [0, 0, 5, 5])
    for bad in ("1,2,3", "a,b,c,d", "10,0,5,5", [0, 0, float("nan"), 1]):
        with pytest.raises(BadInput):
            parse_box(bad)


def test_explaining_the_true_item(pipeline, view, data_dir: Path, small_catalog: Path) -> None:
    photo = read_image(_query(data_dir, ITEMS[0]))
    ex = explain_match(
        pipeline,
        view,
        photo,
        ITEMS[0],
        load_image=lambda image_id: read_image(small_catalog / image_id),
        height=200,
    )
    n = ex.numbers
    assert n["item_id"] == ITEMS[0] and n["image_id"].startswith(f"{ITEMS[0]}/")
    assert n["rank"] == 1 and n["verified"] and n["inliers"] > 0
    assert n["pair"]["inliers"] > 0 and ex.pair.inliers == n["pair"]["inliers"]
    assert -1.0 <= n["pair"]["similarity"] <= 1.0
    assert set(n["timings"]) == {"match", "verify", "gradcam", "draw"}
    json.dumps(n)  # JSON-ready
    assert ex.crop_heat.shape == ex.crop.shape[:2] and ex.crop_heat.std() > 0.05
    assert ex.reference_heat.shape == ex.reference.shape[:2]
    # two rows of height 200 (+ a 4 px gap) and a caption of 2+ lines; width = both images
    h, w, c = ex.picture.shape
    assert c == 3 and ex.picture.dtype == np.uint8 and _caption_lines(h, 200) >= 2
    crop_w = round(ex.crop.shape[1] * 200 / ex.crop.shape[0])
    ref_w = round(ex.reference.shape[1] * 200 / ex.reference.shape[0])
    assert w == crop_w + ref_w


def test_explaining_a_box_and_errors(pipeline, view, data_dir: Path, small_catalog: Path) -> None:
    photo = read_image(_query(data_dir, ITEMS[0]))
    load = lambda image_id: read_image(small_catalog / image_id)  # noqa: E731
    ex = explain_match(pipeline, view, photo, ITEMS[1], [-10, 20, 150, 9999], load_image=load)
    assert ex.numbers["class"] == "box"
    assert ex.numbers["box"] == [0.0, 20.0, 150.0, float(photo.shape[0])]  # clipped to the photo
    assert ex.crop.shape[:2] == (photo.shape[0] - 20, 150)
    with pytest.raises(NotFound):
        explain_match(pipeline, view, photo, "no-such-item", load_image=load)
    with pytest.raises(BadInput):
        explain_match(pipeline, view, photo, ITEMS[0], [900, 900, 950, 950], load_image=load)


def test_images_stored_without_keypoints_are_explained_without_lines(
    pipeline, view, data_dir: Path, small_catalog: Path
) -> None:
    """The service's keypoint loader raises NotFound for an image stored without keypoints:
    the explanation is the embedding's (Grad-CAM, similarity) with an empty pair, not a 404."""

    def no_keypoints(image_id: str):
        raise NotFound(f"catalog image {image_id!r} has no stored keypoints")

    bare = CatalogView(
        catalog_id=view.catalog_id,
        kind=view.kind,
        index=view.index,
        features=FeatureCache(no_keypoints),
        images_of={item: [] for item in view.images_of},  # as the service's view holds them
    )
    photo = read_image(_query(data_dir, ITEMS[0]))
    load = lambda image_id: read_image(small_catalog / image_id)  # noqa: E731
    ex = explain_match(pipeline, bare, photo, ITEMS[0], load_image=load, height=160)
    assert ex.numbers["image_id"].startswith(f"{ITEMS[0]}/") and ex.numbers["rank"] == 1
    assert ex.pair.matches == ex.numbers["pair"]["matches"] == 0 and not ex.numbers["checked"]
    assert ex.numbers["pair"]["similarity"] > 0.3 and ex.reference_heat.std() > 0.05
    assert _caption_lines(ex.picture.shape[0], 160) >= 2


def test_cli_writes_the_picture_and_prints_the_numbers(
    pipeline, small_catalog: Path, data_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("matching.engine.load_pipeline", lambda settings: pipeline)
    photo = _query(data_dir, ITEMS[2])
    out = tmp_path / "x" / "explain.png"
    argv = [str(small_catalog), str(photo), "--item", ITEMS[2], "--out", str(out)]
    assert explain_main([*argv, "--height", "160"]) == 0
    numbers = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert numbers["image"] == str(photo) and numbers["item_id"] == ITEMS[2]
    picture = cv2.imread(str(out))
    assert picture is not None and _caption_lines(picture.shape[0], 160) >= 2
    assert explain_main([str(small_catalog), str(photo), "--item", "nope"]) == 2
    assert explain_main([*argv, "--box", "1,2,3"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow  # several Python processes, each importing the whole engine
def test_python_m_matching_explain_is_the_command(tmp_path: Path) -> None:
    """The README's ``python -m matching.explain`` runs `matching.explain_cli` (no models for
    --help and for arguments it refuses)."""
    done = subprocess.run(
        [sys.executable, "-m", "matching.explain", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m matching.explain")
    assert "--item" in done.stdout and "--box" in done.stdout
    bad = [str(tmp_path), str(tmp_path / "photo.jpg"), "--item", "x", "--box", "1,2"]
    refused = subprocess.run(
        [sys.executable, "-m", "matching.explain", *bad],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert refused.returncode == 2 and "error: box must be" in refused.stderr

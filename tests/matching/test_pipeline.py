"""The engine end to end on real photos: describe references, match frames, the CLI, the bench."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.accuracy import main as accuracy_main
from core.images import read_image
from matching.__main__ import main as cli_main
from matching.folder_catalog import load_folder_catalog
from matching.pipeline import PipelineConfig

ITEMS = (
    "Arla-Standard-Milk",
    "Oatly-Natural-Oatghurt",
    "Tropicana-Apple-Juice",
    "Yoggi-Vanilla-Yoghurt",
)


@pytest.fixture(scope="module")
def small_set(data_dir: Path, tmp_path_factory) -> Path:
    """A set in the data layout: 4 grocery items, 2 queries each, 2 open-set photos."""
    root = tmp_path_factory.mktemp("set")
    src = data_dir / "grocery"
    for item in ITEMS:
        shutil.copytree(src / "catalog" / item, root / "catalog" / item)
        (root / "queries" / item).mkdir(parents=True)
        for path in sorted((src / "queries" / item).iterdir())[:2]:
            shutil.copy(path, root / "queries" / item / path.name)
    (root / "queries" / "_none").mkdir()
    for path in sorted((src / "queries" / "_none").iterdir())[:2]:
        shutil.copy(path, root / "queries" / "_none" / path.name)
    return root


@pytest.fixture(scope="module")
def view(pipeline, small_set: Path):
    return load_folder_catalog(pipeline, small_set / "catalog", cache=False, progress=False)


def test_reference_description(pipeline, data_dir: Path) -> None:
    image = read_image(next((data_dir / "grocery" / "catalog" / ITEMS[0]).iterdir()))
    ref = pipeline.describe_reference(image)
    assert (
        ref.vectors.dtype == np.float32
        and ref.vectors.shape[1] == pipeline.embedder_for("products").dim
    )
    assert len(ref.tags) == len(ref.vectors) and ref.tags[0] == ""
    np.testing.assert_allclose(np.linalg.norm(ref.vectors, axis=1), 1.0, atol=1e-4)
    assert ref.features is not None and len(ref.features) > 50


def test_match_frames_finds_the_true_item(pipeline, view, small_set: Path) -> None:
    photo = read_image(sorted((small_set / "queries" / ITEMS[0]).iterdir())[0])
    grey = np.repeat(photo.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)[::2, ::2]
    results = pipeline.match_frames([photo, grey], view, PipelineConfig(top_k=3))
    assert len(results) == 2
    for result in results:
        assert len(result.matches) == len(result.detections)
        assert {"detect", "embed", "search", "verify"} <= set(result.timings)
    best = max((m[0] for m in results[0].matches if m), key=lambda m: m.score)
    assert best.item_id == ITEMS[0] and best.verified and best.inliers > 20
    assert 0.0 <= best.score <= 1.0


def test_candidates_whose_keypoints_are_gone_are_unchecked_not_an_error(
    pipeline, view, small_set: Path, caplog
) -> None:
    """A catalog image removed or re-indexed since the view synced: its keypoints are gone.
    The frame is still answered; the candidate counts as not verified (``checked`` false)."""
    from dataclasses import replace

    from core.errors import NotFound
    from matching.catalog_view import FeatureCache

    def gone(image_id: str):
        raise NotFound(f"no keypoints of {image_id}")

    stale = replace(view, features=FeatureCache(gone))
    photo = read_image(sorted((small_set / "queries" / ITEMS[0]).iterdir())[0])
    with caplog.at_level("WARNING"):
        [result] = pipeline.match_frames([photo], stale, PipelineConfig(top_k=3))
    matches = [m for row in result.matches for m in row]
    assert matches and not any(m.checked or m.inliers for m in matches)
    assert "are gone: not verified" in caplog.text


def test_empty_inputs_give_empty_answers(pipeline, view) -> None:
    assert pipeline.match_frames([], view) == []
    none = pipeline.match_vectors(
        np.zeros((0, pipeline.embedder_for("products").dim), np.float32), [], view, PipelineConfig()
    )
    assert none == []


def test_cli_prints_json_and_draws(
    small_set: Path, tmp_path: Path, capsys, monkeypatch, weights_dir: Path
) -> None:
    monkeypatch.setenv("SIGHTING_WEIGHTS_DIR", str(weights_dir))
    monkeypatch.setenv("SIGHTING_DETECTOR", "yolov5n")
    monkeypatch.setenv("SIGHTING_EMBEDDER", "mobilenet_v2")
    monkeypatch.setenv("SIGHTING_VERIFIER", "aliked_lightglue")
    from core.settings import get_settings

    get_settings.cache_clear()
    photo = sorted((small_set / "queries" / ITEMS[1]).iterdir())[0]
    try:
        code = cli_main([str(small_set / "catalog"), str(photo), "--out", str(tmp_path)])
    finally:
        get_settings.cache_clear()
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["image"] == str(photo) and line["detections"]
    drawn = cv2.imread(str(tmp_path / f"{photo.stem}.jpg"))
    original = read_image(photo)
    assert drawn.shape[1] == original.shape[1] and drawn.shape[0] > original.shape[0]  # + gallery


def test_cli_help_and_bad_catalog(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as ok:
        cli_main(["--help"])
    assert ok.value.code == 0 and "catalog" in capsys.readouterr().out
    assert cli_main([str(tmp_path / "nope"), str(tmp_path)]) == 2


LAST_LINE = re.compile(
    r"^recall@1=\d\.\d{3} recall@5=\d\.\d{3} confirm_precision=(\d\.\d{3}|nan) "
    r"confirm_recall=\d\.\d{3} open_set_false_confirm=\d\.\d{3} queries=\d+$"
)


def test_accuracy_benchmark_output(
    small_set: Path, tmp_path: Path, capsys, monkeypatch, weights_dir: Path
) -> None:
    for key, value in {
        "WEIGHTS_DIR": str(weights_dir),
        "DETECTOR": "yolov5n",
        "EMBEDDER": "mobilenet_v2",
        "VERIFIER": "aliked_lightglue",
    }.items():
        monkeypatch.setenv(f"SIGHTING_{key}", value)
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        dump, plot = tmp_path / "r.json", tmp_path / "rel.png"
        args = [str(small_set), "--limit", "6", "--json", str(dump), "--plot", str(plot)]
        assert accuracy_main(args) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        # the dump re-scored with the same calibration gives the same figures, without models
        assert accuracy_main([str(small_set), "--rescore", str(dump), "--plot", str(plot)]) == 0
        again = capsys.readouterr().out.strip().splitlines()
        assert accuracy_main([str(small_set), "--rescore", str(dump), "--split", "fit"]) == 0
        fit_half = capsys.readouterr().out.strip().splitlines()
        unseen_args = [str(small_set), "--rescore", str(dump), "--unseen-identities", "0.5"]
        assert accuracy_main(unseen_args) == 0
        unseen = capsys.readouterr().out.strip().splitlines()
    finally:
        get_settings.cache_clear()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert lines[-1].endswith("queries=6") and again[-1] == lines[-1]
    assert fit_half[-1].startswith("recall@1=") and not fit_half[-1].endswith("queries=6")
    # half of the 4 items, as embedding.train would hold them out: their queries only
    assert re.search(r" queries=[1-4]$", unseen[-1]), unseen[-1]
    header = next(line for line in lines if line.startswith("group"))
    assert header.split()[1:] == [
        "recall@1",
        "recall@5",
        "recall@20",
        "confirm_precision",
        "confirm_recall",
        "open_set_false_confirm",
        "ece",
        "queries",
    ]
    picture = cv2.imread(str(plot))
    assert picture is not None and picture.shape == (520, 640, 3)
    records = json.loads((tmp_path / "r.json").read_text())["records"]
    assert len(records) == 6 and sum(r["true"] is None for r in records) == 1  # stratified
    known = [r for r in records if r["true"]]
    top1 = sum(
        max((c for crop in r["crops"] for c in crop), key=lambda c: c["score"])["item_id"]
        == r["true"]
        for r in known
    )
    assert top1 >= 3  # 4 distinct packages, real shelf photos: most are found first


def test_reference_cache_survives_concurrent_writers_and_corrupt_files(
    pipeline, small_set: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    """Two runs indexing one folder at once each write whole cache files (a unique temp file,
    then a rename); a truncated cache file is recomputed, not fatal."""
    from concurrent.futures import ThreadPoolExecutor

    from matching import folder_catalog

    monkeypatch.setattr(folder_catalog, "CACHE_DIR", tmp_path)
    images = folder_catalog.scan_catalog(small_set / "catalog")[:1]
    first = folder_catalog.describe_folder(pipeline, images, progress=False)
    [ref] = first.values()
    [cached] = list(tmp_path.rglob("*.npz"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: folder_catalog._save(cached, ref), range(64)))
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temp file left
    np.testing.assert_array_equal(folder_catalog._load(cached).vectors, ref.vectors)

    cached.write_bytes(cached.read_bytes()[:100])  # truncated by a crash or a full disk
    with caplog.at_level("WARNING"):
        again = folder_catalog.describe_folder(pipeline, images, progress=False)
    assert "unreadable" in caplog.text
    np.testing.assert_allclose(next(iter(again.values())).vectors, ref.vectors, atol=1e-5)
    np.testing.assert_array_equal(folder_catalog._load(cached).vectors, ref.vectors)

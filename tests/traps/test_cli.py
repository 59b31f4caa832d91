"""``python -m traps`` from the command line: a small card labelled by example, by text (a
small random CLIP in the real layout), and its argument errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from core.images import list_images
from traps.__main__ import main


@pytest.fixture()
def card(tmp_path: Path, data_dir: Path) -> Path:
    root = tmp_path / "card"
    root.mkdir()
    shutil.copy(data_dir / "dogs" / "queries" / "1095" / "1095.3.jpg", root / "IMG_0001.JPG")
    shutil.copy(list_images(data_dir / "grocery" / "queries" / "_none")[0], root / "IMG_0002.JPG")
    (root / "IMG_0003.JPG").write_bytes(b"")
    return root


def _labels(tmp_path: Path, data_dir: Path) -> Path:
    root = tmp_path / "labels"
    for label, folder in (("dog", "dogs/queries/_none"), ("banana", "grocery/queries/Banana")):
        (root / label).mkdir(parents=True)
        for p in list_images(data_dir / folder)[::9][:3]:
            shutil.copy(p, root / label / p.name)
    return root


def test_by_example(offline_env, card: Path, tmp_path: Path, data_dir: Path, capsys) -> None:
    out = tmp_path / "out"
    labels = _labels(tmp_path, data_dir)
    assert main([str(card), "--labels", str(labels), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["photos"] == 3 and summary["errors"] == 1 and summary["with_animal"] == 1
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    dog = next(r for r in rows if r["file"] == "IMG_0001.JPG")
    assert dog["animal_present"] == "true" and dog["label"] in ("dog", "banana", "unknown")
    assert (out / "animals.jpg").is_file() and (out / "empties.jpg").is_file()
    assert (out / "photos" / "IMG_0001.jpg").is_file()
    assert main([str(card), "--labels", str(labels), "--out", str(out)]) == 0  # resumed
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["processed"] == 0


def test_by_text(offline_env, card: Path, tmp_path: Path, capsys) -> None:
    from tests.labels.tiny_clip import save_open_clip

    clip = save_open_clip(tmp_path / "CLIP-ViT-B-32-laion2B-s34B-b79K")
    out = tmp_path / "out"
    prompts = ["a photo of a dog", "a photo without an animal"]
    assert main([str(card), "--clip", str(clip), "--prompts", *prompts, "--out", str(out)]) == 0
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    photo = next(r for r in records if r["file"] == "IMG_0001.JPG")
    assert [x["label"] for x in photo["labels"]["labels"]] == prompts
    assert [x["label"] for x in photo["detections"][0]["labels"]["labels"]] == prompts


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prompts", "a tiger"], "--prompts needs --clip"),
        (["--prompts", "a tiger", "--labels", "x", "--clip", "y"], "either --labels"),
        (["--prompts", "", "--clip", "y"], "prompt 0 is empty"),
    ],
)
def test_argument_errors(offline_env, card: Path, tmp_path: Path, extra, message, capsys) -> None:
    assert main([str(card), "--out", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_missing_folder(offline_env, tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err

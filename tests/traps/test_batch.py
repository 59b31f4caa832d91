"""The camera-trap batch on real photos: animal present, labels, known individuals, CSV and
JSON lines, resuming, bad files, night (grey) frames, EXIF, pictures."""

from __future__ import annotations

import csv
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import BadInput
from core.images import list_images, read_image
from labels import ExampleLabeler, read_label_folder
from matching.folder_catalog import load_folder_catalog
from traps import (
    COCO_ANIMALS,
    CSV_COLUMNS,
    TrapConfig,
    TrapModels,
    animal_classes,
    run_batch,
)
from traps.exif import read_meta
from traps.pictures import bar_chart, contact_sheet, photo_card
from traps.sources import FolderSource

DOG = "1095"  # its query photo 1095.3.jpg: yolov5n finds the dog (0.51)


def _huge_png(path: Path, side: int = 100_000) -> None:
    """A PNG whose header says side x side pixels (a few bytes on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, ultralytics_assets) -> Path:
    """A card: an animal (colour, and grey as a night frame, with EXIF), empties, bad files."""
    root = tmp_path_factory.mktemp("card")
    dcim = root / "DCIM" / "100RECNX"
    dcim.mkdir(parents=True)
    dog = Image.open(data_dir / "dogs" / "queries" / DOG / f"{DOG}.3.jpg")
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "RECONYX", "HC600 HYPERFIRE"
    exif.get_ifd(0x8769)[0x9003] = "2026:11:30 22:15:03"
    dog.save(dcim / "IMG_0001.JPG", exif=exif)
    dog.convert("L").save(dcim / "IMG_0002.JPG")  # infrared night frame
    grocery = list_images(data_dir / "grocery" / "queries" / "_none")[:2]
    for i, path in enumerate(grocery):
        shutil.copy(path, dcim / f"IMG_001{i}.JPG")
    shutil.copy(ultralytics_assets / "bus.jpg", dcim / "IMG_0020.JPG")  # people, no animal
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("card notes")
    (root / "cut.jpg").write_bytes((ultralytics_assets / "zidane.jpg").read_bytes()[:4000])
    _huge_png(root / "huge.png")
    return root


@pytest.fixture(scope="module")
def label_set(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """dog (5 photos of 5 dogs not in the catalog) and two grocery kinds."""
    root = tmp_path_factory.mktemp("labels") / "set"
    none = list_images(data_dir / "dogs" / "queries" / "_none")
    firsts = {}
    for p in none:
        firsts.setdefault(p.name.split("__")[0], p)
    (root / "dog").mkdir(parents=True)
    for p in list(firsts.values())[:5]:
        shutil.copy(p, root / "dog" / p.name)
    for item, label in (("Arla-Standard-Milk", "milk"), ("Banana", "banana")):
        (root / label).mkdir()
        for p in list_images(data_dir / "grocery" / "queries" / item)[:5]:
            shutil.copy(p, root / label / p.name)
    return root


@pytest.fixture(scope="module")
def models(pipeline, label_set: Path, data_dir: Path, tmp_path_factory) -> TrapModels:
    from labels import load_label_embedder
    from tests.conftest import offline_settings

    catalog_dir = tmp_path_factory.mktemp("known") / "dogs"
    for item in (DOG, "1100", "1157", "1042"):
        shutil.copytree(data_dir / "dogs" / "catalog" / item, catalog_dir / item)
    catalog = load_folder_catalog(pipeline, catalog_dir, kind="animals", progress=False)
    embedder = load_label_embedder(offline_settings(tmp_path_factory.mktemp("s")))
    labeler = ExampleLabeler.fit(embedder, read_label_folder(label_set))
    return TrapModels(pipeline.detector, labeler, pipeline, catalog)


@pytest.fixture(scope="module")
def batch(card: Path, models: TrapModels, tmp_path_factory) -> tuple[Path, list[tuple[int, int]]]:
    out = tmp_path_factory.mktemp("out")
    calls: list[tuple[int, int]] = []
    run_batch(FolderSource(card), models, out, progress=lambda d, t: calls.append((d, t)))
    return out, calls


def _records(out: Path) -> dict[str, dict]:
    return {r["file"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


def _csv(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_file_is_answered_or_noted(batch, card: Path) -> None:
    out, calls = batch
    records = _records(out)
    assert set(records) == set(FolderSource(card).names())
    errors = {name: r["error"] for name, r in records.items() if r["error"]}
    assert set(errors) == {"empty.jpg", "notes.txt", "cut.jpg", "huge.png"}
    assert "no bytes" in errors["empty.jpg"]
    assert "not an image" in errors["notes.txt"]
    assert "truncated" in errors["cut.jpg"]
    assert "100000x100000" in errors["huge.png"]
    assert calls[0] == (0, 9) and calls[-1] == (9, 9)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_animal_present_labels_and_known_individual(batch) -> None:
    records = _records(batch[0])
    day, night = records["DCIM/100RECNX/IMG_0001.JPG"], records["DCIM/100RECNX/IMG_0002.JPG"]
    for r in (day, night):
        assert r["animal_present"] and r["detections"]
        det = r["detections"][0]
        assert det["class"] in COCO_ANIMALS and det["confidence"] >= 0.25
        assert [x["label"] for x in det["labels"]["labels"]] == ["banana", "dog", "milk"]
        assert DOG in [m["item_id"] for m in det["matches"]]
        assert all(0.0 <= m["score"] <= 1.0 for m in det["matches"])
    assert not day["night"] and night["night"]
    assert (day["time"], day["camera"]) == ("2026-11-30 22:15:03", "RECONYX HC600 HYPERFIRE")
    for name in ("IMG_0010.JPG", "IMG_0011.JPG", "IMG_0020.JPG"):
        empty = records[f"DCIM/100RECNX/{name}"]
        assert not empty["animal_present"] and empty["detections"] == []
        assert 0.0 <= empty["confidence"] < 0.25
        assert empty["labels"]["top"] != "dog"


def test_csv_rows(batch) -> None:
    rows = _csv(batch[0])
    assert tuple(rows[0]) == CSV_COLUMNS
    records = _records(batch[0])
    expected = sum(max(1, len(r["detections"])) for r in records.values())
    assert len(rows) == expected
    dog_rows = [r for r in rows if r["file"].endswith("IMG_0001.JPG")]
    assert dog_rows[0]["animal_present"] == "true" and dog_rows[0]["detection"] == "0"
    assert len(dog_rows[0]["box"].split()) == 4 and dog_rows[0]["verified"] in ("true", "false")
    bus = next(r for r in rows if r["file"].endswith("IMG_0020.JPG"))
    assert bus["animal_present"] == "false" and bus["box"] == "" and bus["item_id"] == ""
    bad = next(r for r in rows if r["file"] == "notes.txt")
    assert bad["error"] and bad["confidence"] == ""


def test_resume_skips_done_photos(batch, card: Path, models: TrapModels, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(batch[0], out)
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if "IMG_0010" not in line]
    # a run killed while writing: one photo missing, the last line cut in half
    (out / "results.jsonl").write_text("".join(kept) + kept[0][:20])
    again = run_batch(FolderSource(card), models, out)
    assert (again.done_before, again.processed, again.total) == (8, 1, 9)
    records = _records(out)
    assert len(records) == 9 and not records["DCIM/100RECNX/IMG_0010.JPG"]["animal_present"]
    assert run_batch(FolderSource(card), models, out).processed == 0


def test_pictures(batch, card: Path) -> None:
    records = list(_records(batch[0]).values())

    def read(name: str):
        try:
            return read_image(card / name)
        except BadInput:
            return None

    animals = contact_sheet(records, read)
    empties = contact_sheet(records, read, empties=True)
    assert animals is not None and animals.dtype == np.uint8 and animals.shape[2] == 3
    assert empties is not None and empties.shape[1] == animals.shape[1]
    assert contact_sheet([r for r in records if not r["animal_present"]], read) is None
    dog = next(r for r in records if r["file"].endswith("IMG_0001.JPG"))
    card_img = photo_card(read(dog["file"]), dog, height=300)
    assert card_img.shape[0] == 300 and card_img.shape[1] > 300
    chart = bar_chart(dog["detections"][0]["labels"], title="dog")
    assert chart.ndim == 3 and chart.shape[1] == 520
    assert (chart < 250).any()  # something was drawn


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("person", "bicycle", "car") + tuple(f"c{i}" for i in range(3, 80)), None),  # no COCO
        (("animal", "person", "vehicle"), ("animal",)),  # MegaDetector v5
        (("tiger", "leopard"), ("tiger", "leopard")),  # an operator's own model: every class
    ],
)
def test_animal_classes(names, expected, pipeline) -> None:
    if expected is None:  # the real COCO detector
        assert animal_classes(pipeline.detector.names)[:3] == ("bird", "cat", "dog")
        assert len(animal_classes(pipeline.detector.names)) == 10
    else:
        assert animal_classes(names) == expected


def test_exif_absent_or_broken() -> None:
    assert read_meta(b"") == read_meta(b"not an image")
    assert read_meta(b"").time == "" and read_meta(b"").camera == ""


def test_bad_config_and_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="floor"):
        TrapConfig(threshold=0.1, floor=0.2)
    with pytest.raises(BadInput, match="does not exist"):
        FolderSource(tmp_path / "nope")

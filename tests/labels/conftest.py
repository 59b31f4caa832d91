"""Real photos and the real ImageNet embedder for the labeler tests."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from core.images import list_images
from tests.conftest import offline_settings


@pytest.fixture(scope="session")
def label_embedder(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The labels' default embedder (ImageNet MobileNetV2), loaded once."""
    from labels import load_label_embedder

    return load_label_embedder(offline_settings(tmp_path_factory.mktemp("store")))


def grocery_by_class(data_dir: Path) -> dict[str, list[Path]]:
    """Query photos of the grocery set by coarse class (classes.csv, read with csv: CRLF)."""
    with open(data_dir / "grocery" / "classes.csv", newline="") as f:
        coarse = {r["item_id"]: r["coarse_class"] for r in csv.DictReader(f)}
    out: dict[str, list[Path]] = {}
    for item, cls in sorted(coarse.items()):
        folder = data_dir / "grocery" / "queries" / item
        if folder.is_dir():
            out.setdefault(cls, []).extend(list_images(folder))
    return out


@pytest.fixture(scope="session")
def grocery_label_folder(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LABELSET/<label>/<image>: 5 photos each of Milk, Banana, Tomato (every 7th photo)."""
    root = tmp_path_factory.mktemp("labelset") / "grocery3"
    by_class = grocery_by_class(data_dir)
    for label in ("Milk", "Banana", "Tomato"):
        (root / label).mkdir(parents=True)
        for path in by_class[label][::7][:5]:
            shutil.copy(path, root / label / path.name)
    return root


@pytest.fixture(scope="session")
def grocery_held_out(data_dir: Path) -> list[tuple[Path, str]]:
    """4 photos per label that are not examples (offset 3, every 7th)."""
    by_class = grocery_by_class(data_dir)
    return [(p, label) for label in ("Milk", "Banana", "Tomato") for p in by_class[label][3::7][:4]]

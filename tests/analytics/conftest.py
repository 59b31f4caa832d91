"""Real descriptors for the analytics tests: grocery shelf photos embedded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.data import Descriptors
from tests.conftest import DATA, offline_settings

ITEMS = ("Arla-Standard-Milk", "Oatly-Natural-Oatghurt", "Banana", "Tropicana-Apple-Juice")
PER_ITEM = 8


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """``item/photo.jpg`` links to 8 real shelf photos of each of 4 grocery items."""
    root = tmp_path_factory.mktemp("photos")
    for item in ITEMS:
        (root / item).mkdir()
        for src in sorted((DATA / "grocery" / "queries" / item).iterdir())[:PER_ITEM]:
            (root / item / src.name).symlink_to(src)
    return root


@pytest.fixture(scope="session")
def grocery(photo_folder: Path, tmp_path_factory) -> Descriptors:
    """The photos embedded with the products model (32 x 128, items = folders)."""
    from analytics.sources import embed_folder

    settings = offline_settings(tmp_path_factory.mktemp("store"))
    cache = tmp_path_factory.mktemp("cache")
    return embed_folder(photo_folder, settings, "products", cache_dir=cache)

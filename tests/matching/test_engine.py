"""`matching.engine.Engine`, the Python front door: the same answers as the pipeline's parts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import BadInput
from core.images import read_image
from matching.engine import Engine
from matching.pipeline import PipelineConfig
from tests.conftest import offline_settings

ITEMS = ("Arla-Standard-Milk", "Oatly-Natural-Oatghurt", "Tropicana-Apple-Juice")

pytestmark = pytest.mark.slow  # the real models


@pytest.fixture(scope="module")
def engine(pipeline, tmp_path_factory) -> Engine:
    return Engine(pipeline, offline_settings(tmp_path_factory.mktemp("store")))


@pytest.fixture(scope="module")
def catalog_dir(data_dir: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    for item in ITEMS:
        shutil.copytree(data_dir / "grocery" / "catalog" / item, root / item)
    return root


def photo(data_dir: Path, item: str) -> Path:
    return sorted((data_dir / "grocery" / "queries" / item).iterdir())[0]


def test_search_is_the_search_routes_ranking(engine, catalog_dir, data_dir) -> None:
    catalog = engine.folder_catalog(catalog_dir, kind="products")
    assert catalog.kind == "products" and sorted(catalog.images_of) == sorted(ITEMS)
    path = photo(data_dir, "Oatly-Natural-Oatghurt")
    ranked = engine.search(path, catalog)
    config = PipelineConfig.from_settings(engine.settings, top_k=20, whole_frame=True)
    expected = engine.pipeline.match_frames([read_image(path)], catalog, config)[0]
    assert [(m.item_id, m.score) for m in ranked] == [
        (m.item_id, m.score) for m in expected.ranked_items(20)
    ]
    assert len(ranked) == len(ITEMS)  # never cut by a threshold: every item, best first
    assert ranked[0].item_id == "Oatly-Natural-Oatghurt"
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)
    assert len(engine.search(read_image(path), catalog, top_k=1)) == 1  # pixels work too


def test_match_takes_pipeline_options(engine, catalog_dir, data_dir) -> None:
    catalog = engine.folder_catalog(catalog_dir, kind="products")
    result = engine.match(photo(data_dir, "Arla-Standard-Milk"), catalog, top_k=2, verify=False)
    assert len(result.matches) == len(result.detections) >= 1
    assert all(len(ms) <= 2 and not any(m.checked for m in ms) for ms in result.matches)
    with pytest.raises(TypeError):
        engine.match(photo(data_dir, "Arla-Standard-Milk"), catalog, topk=2)  # a misspelt option


def test_a_missing_photo_is_a_clear_error(engine, catalog_dir, tmp_path) -> None:
    catalog = engine.folder_catalog(catalog_dir, kind="products")
    with pytest.raises(BadInput, match="no-such.jpg"):
        engine.search(tmp_path / "no-such.jpg", catalog)

"""Catalog views on Milvus Lite: the store stays the truth, workers share the engine's vectors.

Two `CatalogCache` objects over one store and one engine stand for two workers (the real
two-process case with gunicorn is in tests/deploy/test_milvus_workers.py). The vectors are
synthetic (the models add nothing here); store, manifests and Milvus are real.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog.cache import CatalogCache
from catalog.reindex import reindex_vectors
from catalog.repository import CatalogRepository, Fingerprints, NewImage
from catalog.stores import open_store
from catalog.vector_sync import sync_catalog
from core.errors import Busy, Conflict, IndexUnavailable
from matching.milvus_index import MilvusIndex, collection_name, engine_for
from matching.pipeline import CROP_TAG, Reference
from matching.references import to_blobs
from tests.milvus import free_port, lite_config, start_lite_server

DIM = 16
EMBEDDER = "test-embedder:1"
PNG = io.BytesIO()
Image.new("RGB", (8, 8), (90, 120, 30)).save(PNG, format="PNG")


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(2, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add(repo: CatalogRepository, cid: str, item: str, seed: int) -> str:
    """Store one image of ``item`` whose two vectors (whole, crop) come from ``seed``."""
    ref = Reference(
        vectors=vector(seed), tags=["", CROP_TAG], box=np.array([0, 0, 8, 8]), features=None
    )
    image = NewImage(PNG.getvalue(), "image/png", 8, 8, to_blobs(ref))
    added = repo.add_images(cid, item, None, [image], Fingerprints(embedder=EMBEDDER))
    return added.images[0].image_id


@pytest.fixture()
def repo(settings) -> CatalogRepository:
    return CatalogRepository(open_store(settings))


@pytest.fixture()
def config(tmp_path: Path):
    return lite_config(tmp_path)


def worker(repo, config, interval: float = 3600.0) -> CatalogCache:
    """A worker's cache that would not re-read the store by itself for an hour."""
    return CatalogCache(repo, lambda kind: DIM, sync_interval_s=interval, index=config)


def top_item(cache: CatalogCache, cid: str, seed: int) -> list[str]:
    _, view = cache.get(cid)
    return view.index.search(vector(seed)[:1], 3).item_ids[0]


def test_write_through_one_worker_is_found_through_the_other(repo, config):
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    add(repo, cid, "milk", 1)
    a, b = worker(repo, config), worker(repo, config)
    assert top_item(b, cid, 1) == ["milk"]  # b's view is now fresh for an hour
    image = add(repo, cid, "juice", 2)
    a.refresh(cid)  # what the upload route does before answering 201: syncs the engine
    assert top_item(b, cid, 2)[0] == "juice"  # b sees the engine's newer version at once
    manifest, view = b.get(cid)
    assert image in manifest.items["juice"].images  # and its manifest (keypoint keys)
    assert len(view.index) == 4 and view.index.items == ["juice", "milk"]
    # a deleted image is never returned, by either worker
    repo.remove_image(cid, image)
    a.refresh(cid)
    for cache in (a, b):
        hits = cache.get(cid)[1].index.search(vector(2)[:1], 5)
        assert hits.item_ids[0] == ["milk"] and image not in str(hits.image_ids)


def test_workers_hold_no_vectors_and_sync_once(repo, config):
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    for n in range(5):
        add(repo, cid, f"item{n}", 10 + n)
    a, b = worker(repo, config), worker(repo, config)
    _, view = a.get(cid)
    assert isinstance(view.index, MilvusIndex) and not hasattr(view.index, "_index")
    engine = engine_for(config)
    assert engine.synced(cid) == (collection_name(EMBEDDER, DIM), repo.get_manifest(cid).version)
    rows_before = engine.count(collection_name(EMBEDDER, DIM))
    b.get(cid)  # b finds the version synced: writes nothing
    assert engine.count(collection_name(EMBEDDER, DIM)) == rows_before == 10


def test_tenants_and_catalogs_never_see_each_other(repo, config):
    mine = repo.create_catalog("shop", "products", "alice").catalog_id
    theirs = repo.create_catalog("shop", "products", "bob").catalog_id
    add(repo, mine, "milk", 1)
    add(repo, theirs, "secret", 1)  # the very same vector, in another tenant's catalog
    cache = worker(repo, config)
    assert top_item(cache, mine, 1) == ["milk"]
    assert top_item(cache, theirs, 1) == ["secret"]


def test_engine_away_gives_503_and_the_upload_is_synced_on_return(repo, tmp_path):
    port = free_port()
    config = lite_config(tmp_path, milvus_uri=f"http://127.0.0.1:{port}", milvus_timeout_s=2.0)
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    add(repo, cid, "milk", 1)
    cache = worker(repo, config, interval=0.0)
    with pytest.raises(IndexUnavailable) as err:
        cache.get(cid)
    assert isinstance(err.value, Busy) and err.value.status == 503  # 503 + Retry-After
    add(repo, cid, "juice", 2)  # written while the engine is away: the store keeps it
    cache.refresh(cid)  # does not raise: the upload route still answers 201
    server = start_lite_server(tmp_path / "server", port)
    try:
        assert top_item(cache, cid, 2)[0] == "juice"
        assert top_item(cache, cid, 1)[0] == "milk"
    finally:
        server.terminate()
        server.wait(10)


def test_reindex_rebuilds_from_the_store_and_a_lost_row_comes_back(repo, config):
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    images = [add(repo, cid, f"item{n}", 20 + n) for n in range(3)]
    engine = engine_for(config)
    name = collection_name(EMBEDDER, DIM)
    report = reindex_vectors(repo, config, cid, progress=False)
    assert report.added == 3 and engine.count(name) == 6
    engine.call("delete", "delete", name, ids=[f"{cid}/{images[0]}"])  # the engine loses one
    index = MilvusIndex(engine, cid, DIM, tenant="alice", embedder=EMBEDDER)
    assert images[0] not in index.search(vector(20)[:1], 3).image_ids[0]
    reindex_vectors(repo, config, cid, progress=False)
    assert index.search(vector(20)[:1], 1).image_ids[0] == [images[0]]
    assert engine.count(name) == 6


def test_dimension_mismatch_is_a_conflict(repo, config):
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    add(repo, cid, "milk", 1)
    cache = CatalogCache(repo, lambda kind: DIM * 2, sync_interval_s=0.0, index=config)
    with pytest.raises(Conflict, match="16-d vectors.*32-d"):
        cache.get(cid)


def test_collection_of_another_dimension_is_a_conflict(config):
    from pymilvus import DataType, MilvusClient

    engine = engine_for(config)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("pk", DataType.VARCHAR, max_length=64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM // 2)
    engine.call("create", "create_collection", collection_name(EMBEDDER, DIM), schema=schema)
    with pytest.raises(Conflict, match="8-d"):
        MilvusIndex(engine, "shop", DIM, tenant="alice", embedder=EMBEDDER)


def test_deleted_catalog_leaves_the_engine(repo, config):
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    add(repo, cid, "milk", 1)
    cache = worker(repo, config)
    cache.get(cid)
    engine = engine_for(config)
    assert engine.count(collection_name(EMBEDDER, DIM)) == 2
    repo.delete_catalog(cid)
    cache.invalidate(cid)  # what DELETE /v1/catalogs/<id> does
    assert engine.count(collection_name(EMBEDDER, DIM)) == 0 and engine.synced(cid) is None


def test_sync_is_idempotent_and_follows_item_moves(repo, config):
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    add(repo, cid, "milk", 1)
    manifest = repo.get_manifest(cid)
    index = MilvusIndex(engine_for(config), cid, DIM, tenant="alice", embedder=EMBEDDER)
    first = sync_catalog(index, manifest, repo.get_feature)
    again = sync_catalog(index, manifest, repo.get_feature)
    assert (first.added, again.skipped) == (1, True)
    forced = sync_catalog(index, manifest, repo.get_feature, force=True)
    assert forced.added == 1 and len(index) == 2


def test_one_command_moves_every_catalog_to_milvus(settings, config, monkeypatch, capsys):
    """``python -m catalog reindex --backend milvus --all``: every stored catalog's vectors
    in Milvus from the store (no model runs), a catalog the store lost leaves the engine."""
    from catalog.__main__ import main
    from core.settings import get_settings

    repo = CatalogRepository(open_store(settings))
    shops = [repo.create_catalog(f"shop{n}", "products", f"t{n}").catalog_id for n in range(2)]
    for n, cid in enumerate(shops):
        add(repo, cid, "milk", 40 + n)
    engine = engine_for(config)
    engine.mark_synced("gone-catalog", collection_name(EMBEDDER, DIM), 3)  # store lost it
    monkeypatch.setenv("SIGHTING_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SIGHTING_STORAGE", "local")
    get_settings.cache_clear()
    try:
        assert main(["reindex", "--backend", "milvus", "--uri", config.milvus_uri, "--all"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "gone-catalog  not in the store" in out and "index=FLAT" in out
    assert engine.synced("gone-catalog") is None
    for n, cid in enumerate(shops):
        assert engine.synced(cid) == (
            collection_name(EMBEDDER, DIM),
            repo.get_manifest(cid).version,
        )
        index = MilvusIndex(engine, cid, DIM, tenant=f"t{n}", embedder=EMBEDDER)
        assert index.search(vector(40 + n)[:1], 1).item_ids == [["milk"]] and len(index) == 2


def test_an_engine_that_lost_the_catalog_is_refilled_by_the_next_request(repo, config):
    cid = repo.create_catalog("shop", "products", "alice").catalog_id
    add(repo, cid, "milk", 1)
    cache = worker(repo, config)  # fresh for an hour after its first get
    assert top_item(cache, cid, 1) == ["milk"]
    engine = engine_for(config)
    engine.forget(cid)  # the engine loses the catalog (wiped, restored from an old backup)
    assert top_item(cache, cid, 1) == ["milk"]  # the next request re-syncs from the store
    assert engine.synced(cid) == (collection_name(EMBEDDER, DIM), repo.get_manifest(cid).version)

"""A merchant's own embedder: export a catalog from the store, train a head on it, and have
the service's products kind load that head file (SIGHTING_PRODUCTS_EMBEDDER)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.__main__ import main as catalog_main
from catalog.repository import CatalogRepository, NewImage
from catalog.stores import open_store
from core.errors import ModelUnavailable
from core.images import list_images
from core.settings import get_settings
from embedding import load_embedders
from embedding.train import main as train_main
from tests.conftest import offline_settings

DOGS = ("0", "1", "1003", "1004", "1006", "1007")  # each has >= 3 query photos


@pytest.mark.slow  # trains a head on the real base model and loads the real default set
def test_export_train_and_serve_your_own_head(tmp_path: Path, data_dir: Path, monkeypatch):
    settings = offline_settings(tmp_path / "store")
    repository = CatalogRepository(open_store(settings))
    cid = repository.create_catalog("my shop", "products", "local").catalog_id
    for dog in DOGS:
        photos = list_images(data_dir / "dogs" / "catalog" / dog)[:1]
        photos += list_images(data_dir / "dogs" / "queries" / dog)[:3]
        images = [NewImage(p.read_bytes(), "image/jpeg", 1, 1, {}) for p in photos]
        repository.add_images(cid, f"dog-{dog}", None, images)

    monkeypatch.setenv("SIGHTING_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    out = tmp_path / "my-shop"
    try:
        assert catalog_main(["export", cid, str(out)]) == 0
        assert catalog_main(["export", cid, str(out)]) == 2  # never over an earlier export
    finally:
        get_settings.cache_clear()
    assert sorted(p.name for p in (out / "catalog").iterdir()) == [f"dog-{d}" for d in DOGS]
    for dog in DOGS:  # the first photo sent is the catalog photo, the others are queries
        [first] = list_images(out / "catalog" / f"dog-{dog}")
        sent = list_images(data_dir / "dogs" / "catalog" / dog)[0]
        assert first.read_bytes() == sent.read_bytes()
    assert all(len(list_images(out / "queries" / f"dog-{d}")) == 3 for d in DOGS)

    head = tmp_path / "my-shop.head"
    argv = [str(out), "--out", str(head), "--weights-dir", str(settings.weights_dir)]
    argv += ["--epochs", "2", "--dim", "32", "--views", "1", "--holdout-identities", "0.2"]
    assert train_main(argv) == 0

    mine = offline_settings(tmp_path / "store", products_embedder=str(head))
    embedders = load_embedders(mine)
    assert embedders["products"].dim == 32
    assert embedders["products"].fingerprint.startswith("my-shop:")
    assert embedders["animals"].fingerprint.startswith("animals:")  # the other kind unchanged
    with pytest.raises(ModelUnavailable, match="no head file"):
        load_embedders(offline_settings(tmp_path, products_embedder=str(tmp_path / "x.head")))

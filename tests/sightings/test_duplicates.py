"""Catching one item entered twice: the upload's images matched against the catalog as it
was (real models, real grocery photos), and the catalog's log of possible duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.cache import CatalogCache, model_fingerprints
from catalog.local_store import LocalStore
from catalog.repository import CatalogRepository, NewImage
from core.images import decode_image
from matching.references import to_blobs
from sightings.duplicates import DuplicateLog, PossibleDuplicate, possible_duplicates

GROCERY = Path(__file__).resolve().parents[3] / "shared" / "data" / "grocery"
ITEMS = ("Arla-Standard-Milk", "Oatly-Natural-Oatghurt", "Tropicana-Apple-Juice")


def _photo(item: str) -> bytes:
    return next((GROCERY / "catalog" / item).iterdir()).read_bytes()


@pytest.mark.slow
def test_an_item_entered_twice_is_named_and_others_are_not(pipeline, tmp_path) -> None:
    repo = CatalogRepository(LocalStore(tmp_path))
    cid = repo.create_catalog("shop", "products", "t").catalog_id
    fingerprints = model_fingerprints(pipeline, "products")
    for item in ITEMS:
        pixels = decode_image(_photo(item))
        ref = pipeline.describe_reference(pixels, "products")
        h, w = pixels.shape[:2]
        repo.add_images(
            cid,
            item,
            None,
            [NewImage(_photo(item), "image/jpeg", w, h, to_blobs(ref))],
            fingerprints,
        )
    cache = CatalogCache(repo, lambda kind: pipeline.embedder_for(kind).dim, sync_interval_s=0)
    view = cache.get(cid)[1]
    twice = decode_image(_photo("Oatly-Natural-Oatghurt"))  # the same product, a new id
    other = decode_image(_photo("Alpro-Fresh-Soy-Milk"))  # not in the catalog
    refs = [pipeline.describe_reference(p, "products") for p in (other, twice)]
    found = possible_duplicates(pipeline, view, "oatly-2", [other, twice], refs, min_score=0.5)
    assert [d.item_id for d in found][:1] == ["Oatly-Natural-Oatghurt"]
    assert found[0].image_index == 1 and found[0].verified and found[0].score > 0.9
    # its own item is never its duplicate (images added to an existing item)
    again = possible_duplicates(
        pipeline, view, "Oatly-Natural-Oatghurt", [twice], refs[1:], min_score=0.5
    )
    assert "Oatly-Natural-Oatghurt" not in [d.item_id for d in again]
    assert possible_duplicates(pipeline, None, None, [twice], refs[1:], min_score=0.5) == []


def test_the_duplicate_log_keeps_pairs_of_items_that_exist(tmp_path) -> None:
    repo = CatalogRepository(LocalStore(tmp_path))
    cid = repo.create_catalog("shop", "products", "t").catalog_id
    blobs = {"emb.npz": b"x"}
    for item in ("a", "b", "c"):
        repo.add_images(
            cid, item, None, [NewImage(b"\xff\xd8" + item.encode(), "image/jpeg", 4, 4, blobs)]
        )
    log = DuplicateLog(repo.store)
    log.record(cid, "c", [PossibleDuplicate("a", 0.97, 0.95, 80, True, 0)])
    log.record(cid, "b", [PossibleDuplicate("a", 0.6, 0.9, 5, False, 0)])
    log.record(cid, "a", [PossibleDuplicate("c", 0.99, 0.96, 90, True, 0)])  # same pair, updated
    pairs = log.pairs(repo.get_manifest(cid))
    assert [(p["item"], p["looks_like"], p["score"]) for p in pairs] == [
        ("a", "c", 0.99),
        ("b", "a", 0.6),
    ]
    assert repo.gc_orphans(cid, grace_s=0.0) == []  # the log is no orphan
    repo.remove_item(cid, "c")
    assert [p["item"] for p in log.pairs(repo.get_manifest(cid))] == ["b"]

"""A catalog's own calibration in the store: named by the manifest, fingerprinted by content,
never stored over a catalog that changed since the fit, never collected as an orphan."""

from __future__ import annotations

import pytest

from catalog.manifest import KINDS, Manifest
from catalog.repository import CatalogRepository, Fingerprints, NewImage
from catalog.store import Store
from core.errors import Conflict

FP = Fingerprints(embedder="mobilenet_v2:1234", verifier="aliked_lightglue:5678")


def _image(tag: str) -> NewImage:
    return NewImage(b"\xff\xd8" + tag.encode(), "image/jpeg", 8, 8, {"emb.npz": tag.encode()})


@pytest.fixture()
def repo(store: Store) -> CatalogRepository:
    return CatalogRepository(store, backoff_s=0.002)


def test_new_kinds_are_catalog_kinds(repo: CatalogRepository) -> None:
    for kind in ("vehicles", "wildlife", "other"):
        assert kind in KINDS
        assert repo.create_catalog("c", kind, "t").kind == kind


def test_content_digest_follows_the_content_not_the_metadata(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "other", "t").catalog_id
    repo.add_images(cid, "a", {"n": 1}, [_image("a")], FP)
    before = repo.get_manifest(cid).content_digest()
    repo.update_metadata(cid, "a", {"n": 2})
    assert repo.get_manifest(cid).content_digest() == before
    repo.add_images(cid, "b", None, [_image("b")], FP)
    after = repo.get_manifest(cid)
    assert after.content_digest() != before
    image_id = next(iter(after.items["b"].images))
    repo.remove_image(cid, image_id)
    assert repo.get_manifest(cid).content_digest() != after.content_digest()


def test_save_calibration_names_it_and_replaces_the_old_blob(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    repo.add_images(cid, "a", None, [_image("a")], FP)
    digest = repo.get_manifest(cid).content_digest()
    first = repo.save_calibration(cid, b'{"v": 1}', digest, "fitted", "t1")
    assert first.calibration.content_digest == digest and first.calibration.status == "fitted"
    assert repo.load_calibration(first) == b'{"v": 1}'
    round_trip = Manifest.from_json(first.to_json())
    assert round_trip.calibration == first.calibration
    assert first.calibration.key in first.referenced_keys()
    assert repo.gc_orphans(cid, grace_s=0.0) == []  # the blob is no orphan
    second = repo.save_calibration(cid, b'{"v": 2}', digest, "fitted", "t2")
    assert repo.load_calibration(second) == b'{"v": 2}'
    assert first.calibration.key not in repo.store.list(f"catalogs/{cid}/")


def test_a_calibration_of_content_that_changed_is_not_stored(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "animals", "t").catalog_id
    repo.add_images(cid, "a", None, [_image("a")], FP)
    digest = repo.get_manifest(cid).content_digest()
    repo.add_images(cid, "b", None, [_image("b")], FP)  # lands during the fit
    with pytest.raises(Conflict) as info:
        repo.save_calibration(cid, b"{}", digest, "fitted", "t")
    assert info.value.details["stale"] is True
    manifest = repo.get_manifest(cid)
    assert manifest.calibration is None and repo.load_calibration(manifest) is None
    assert not [k for k in repo.store.list(f"catalogs/{cid}/") if "/calibration/" in k]

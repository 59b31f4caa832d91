"""CatalogRepository on both stores: CRUD, fingerprints, concurrent writers, deletes, orphans."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from catalog.local_store import LocalStore
from catalog.repository import (
    CatalogRepository,
    Fingerprints,
    NewImage,
    catalog_prefix,
    feature_key,
    manifest_key,
)
from catalog.store import Store
from core.errors import BadInput, Conflict, NotFound, StoreUnavailable

JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes"  # opaque to the repository
FP = Fingerprints(embedder="mobilenet_v2:1234", verifier="aliked_lightglue:5678")


def _image(tag: str = "x", content_type: str = "image/jpeg") -> NewImage:
    return NewImage(
        JPEG + tag.encode(), content_type, 64, 48, {"emb.npy": b"E" + tag.encode(), "kp.npz": b"K"}
    )


@pytest.fixture()
def repo(store: Store) -> CatalogRepository:
    return CatalogRepository(store, backoff_s=0.002)


# --- catalogs -------------------------------------------------------------------------------
def test_create_get_and_list_catalogs(repo: CatalogRepository) -> None:
    shop = repo.create_catalog("Shop shelf", "products", owner="tenant-a")
    dogs = repo.create_catalog("Lost dogs", "animals", owner="tenant-b")
    assert shop.catalog_id != dogs.catalog_id and shop.version == 1
    assert repo.get_manifest(shop.catalog_id) == shop
    ids = sorted([shop.catalog_id, dogs.catalog_id])
    assert repo.store.list() == [manifest_key(c) for c in ids]
    assert {m.catalog_id for m in repo.list_catalogs()} == {shop.catalog_id, dogs.catalog_id}
    assert [m.catalog_id for m in repo.list_catalogs(owner="tenant-b")] == [dogs.catalog_id]
    assert repo.list_catalogs(owner="nobody") == []


@pytest.mark.parametrize(
    ("name", "kind", "owner"),
    [
        ("", "products", "t"),  # empty name
        ("   ", "products", "t"),  # blank name
        ("x" * 201, "products", "t"),  # over-long name
        ("n", "cars", "t"),  # unknown kind
        ("n", "products", ""),  # no owner
    ],
)
def test_create_catalog_refuses_bad_input(repo: CatalogRepository, name, kind, owner) -> None:
    with pytest.raises(BadInput):
        repo.create_catalog(name, kind, owner)
    assert repo.store.list() == []


@pytest.mark.parametrize("catalog_id", ["nope", "../etc", "", "ABC", "a/b", "x" * 65])
def test_unknown_or_malformed_catalog_ids_are_not_found(repo: CatalogRepository, catalog_id):
    for call in (
        lambda: repo.get_manifest(catalog_id),
        lambda: repo.manifest_etag(catalog_id),
        lambda: repo.delete_catalog(catalog_id),
        lambda: repo.add_images(catalog_id, "item", None, [_image()]),
        lambda: repo.remove_item(catalog_id, "item"),
    ):
        with pytest.raises(NotFound):
            call()
    assert repo.store.list() == []


# --- items and images ------------------------------------------------------------------
def test_add_images_writes_data_then_manifest(repo: CatalogRepository) -> None:
    cat = repo.create_catalog("c", "products", "t")
    etag_before = repo.manifest_etag(cat.catalog_id)
    added = repo.add_images(
        cat.catalog_id, "sku-1", {"price": 3}, [_image("a"), _image("b", "image/png")], FP
    )
    cid = cat.catalog_id
    manifest = repo.get_manifest(cid)
    assert manifest == added.manifest and manifest.version == 2
    assert repo.manifest_etag(cid) != etag_before
    assert manifest.embedder_fingerprint == FP.embedder
    assert manifest.verifier_fingerprint == FP.verifier
    item = manifest.items["sku-1"]
    assert item.metadata == {"price": 3} and list(item.images) == [r.image_id for r in added.images]
    first, second = added.images
    assert first.key == f"catalogs/{cid}/images/sku-1/{first.image_id}.jpg"
    assert second.key.endswith(".png") and (second.width, second.height) == (64, 48)
    assert first.feature_keys == {
        "emb.npy": feature_key(cid, first.image_id, "emb.npy"),
        "kp.npz": feature_key(cid, first.image_id, "kp.npz"),
    }
    record, data = repo.get_image(cid, second.image_id)
    assert data == JPEG + b"b" and record == second
    assert repo.get_feature(first.feature_keys["emb.npy"]) == b"Ea"
    assert set(repo.store.list(catalog_prefix(cid))) == manifest.referenced_keys() | {
        manifest_key(cid)
    }


def test_add_to_an_existing_item_merges_metadata(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "animals", "t").catalog_id
    repo.add_images(cid, "dog", {"name": "Rex", "age": 3}, [_image("1")])
    repo.add_images(cid, "dog", {"age": 4}, [_image("2")])
    added = repo.add_images(cid, "dog", None, [_image("3")])
    assert added.item.metadata == {"name": "Rex", "age": 4}
    assert len(added.item.images) == 3 and added.manifest.version == 4


def test_generated_item_ids_and_empty_image_lists(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    first = repo.add_images(cid, None, None, [_image()])
    second = repo.add_images(cid, None, {"note": "no photo yet"}, [])
    assert first.item.item_id != second.item.item_id
    assert second.item.images == {} and second.images == []
    assert set(repo.get_manifest(cid).items) == {first.item.item_id, second.item.item_id}


@pytest.mark.parametrize(
    ("item_id", "metadata", "image"),
    [
        ("..", None, _image()),  # traversal
        (".hidden", None, _image()),  # leading dot
        ("a/b", None, _image()),  # separator
        ("x" * 129, None, _image()),  # too long
        ("", None, _image()),  # empty
        ("ok", ["not", "a", "dict"], _image()),  # metadata not an object
        ("ok", {"when": object()}, _image()),  # metadata not JSON
        ("ok", None, (b"", "image/jpeg", 1, 1, {})),  # empty image
        ("ok", None, (JPEG, "jpeg", 1, 1, {})),  # not a media type
        ("ok", None, (JPEG, "image/jpeg", 0, 1, {})),  # zero width
        ("ok", None, (JPEG, "image/jpeg", 1, 1, {"../x": b""})),  # bad feature kind
        ("ok", None, (JPEG, "image/jpeg", 1, 1)),  # four fields
    ],
)
def test_add_images_refuses_bad_input(repo: CatalogRepository, item_id, metadata, image) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    with pytest.raises(BadInput):
        repo.add_images(cid, item_id, metadata, [image])
    assert repo.store.list() == [manifest_key(cid)]
    assert repo.get_manifest(cid).version == 1


def test_fingerprint_mismatch_is_a_conflict_naming_both(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    repo.add_images(cid, "a", None, [_image()], FP)
    keys_before = repo.store.list()
    other = Fingerprints(embedder="resnet34:9999")
    with pytest.raises(Conflict) as info:
        repo.add_images(cid, "b", None, [_image()], other)
    assert "mobilenet_v2:1234" in info.value.message and "resnet34:9999" in info.value.message
    assert repo.store.list() == keys_before  # nothing written for the refused add
    repo.add_images(cid, "c", None, [_image()], Fingerprints(embedder=FP.embedder))  # same: fine


def test_set_features_caches_blobs_on_an_existing_image(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    image = repo.add_images(cid, "a", None, [NewImage(JPEG, "image/jpeg", 8, 8, {})]).images[0]
    record = repo.set_features(cid, image.image_id, {"kp.npz": b"KP"}, FP)
    assert record.feature_keys == {"kp.npz": feature_key(cid, image.image_id, "kp.npz")}
    assert repo.get_feature(record.feature_keys["kp.npz"]) == b"KP"
    assert repo.get_manifest(cid).verifier_fingerprint == FP.verifier
    with pytest.raises(NotFound):
        repo.set_features(cid, "no-such-image", {"kp.npz": b"KP"})
    with pytest.raises(BadInput):
        repo.get_feature(f"catalogs/{cid}/manifest.json")


def test_replace_features_swaps_every_blob_and_the_fingerprints_at_once(
    repo: CatalogRepository,
) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    a = repo.add_images(cid, "a", None, [_image("1"), _image("2")], FP).images
    b = repo.add_images(cid, "b", None, [_image("3")], FP).images
    old_keys = {k for r in [*a, *b] for k in r.feature_keys.values()}
    new_fp = Fingerprints(embedder="products:abcdef", verifier="aliked_lightglue:5678")
    features = {r.image_id: {"emb.npz": b"NEW" + r.image_id.encode()} for r in [*a, *b]}

    # an image added meanwhile: refused, naming it, and nothing of this run is left behind
    late = repo.add_images(cid, "b", None, [_image("4")], FP).images[0]
    before = repo.get_manifest(cid)
    with pytest.raises(Conflict) as info:
        repo.replace_features(cid, features, new_fp)
    assert info.value.details["missing"] == [late.image_id]
    assert repo.get_manifest(cid).version == before.version
    assert set(repo.store.list(f"{catalog_prefix(cid)}features/")) == old_keys | set(
        late.feature_keys.values()
    )

    features[late.image_id] = {"emb.npz": b"NEW-late"}
    manifest, old_blobs = repo.replace_features(cid, features, new_fp)
    assert set(old_blobs) == old_keys | set(late.feature_keys.values())
    assert all(repo.store.exists(k) for k in old_blobs)  # workers may still read them
    repo.discard_unreferenced(cid, old_blobs)
    assert manifest.version == before.version + 1
    assert (manifest.embedder_fingerprint, manifest.verifier_fingerprint) == (
        new_fp.embedder,
        new_fp.verifier,
    )
    for item in manifest.items.values():
        for record in item.images.values():
            assert list(record.feature_keys) == ["emb.npz"]  # kinds not described are gone
            blob = repo.get_feature(record.feature_keys["emb.npz"])
            assert blob == features[record.image_id]["emb.npz"]
    # the old blobs are deleted; only the new ones remain
    left = set(repo.store.list(f"{catalog_prefix(cid)}features/"))
    assert left == {
        k
        for item in manifest.items.values()
        for r in item.images.values()
        for k in r.feature_keys.values()
    }
    # adds now need the new models
    with pytest.raises(Conflict):
        repo.add_images(cid, "c", None, [_image()], FP)
    repo.add_images(cid, "c", None, [_image()], new_fp)


def test_update_metadata_merges_or_replaces(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    repo.add_images(cid, "a", {"x": 1, "y": 2}, [])
    assert repo.update_metadata(cid, "a", {"y": 3}).metadata == {"x": 1, "y": 3}
    assert repo.update_metadata(cid, "a", {"z": 0}, replace=True).metadata == {"z": 0}
    assert repo.get_manifest(cid).version == 4
    with pytest.raises(NotFound):
        repo.update_metadata(cid, "missing", {"a": 1})


def test_remove_image_and_item_delete_their_data(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    keep = repo.add_images(cid, "keep", None, [_image("k")])
    drop = repo.add_images(cid, "drop", None, [_image("1"), _image("2")])
    one, two = drop.images
    manifest = repo.remove_image(cid, one.image_id)
    assert one.image_id not in manifest.items["drop"].images
    assert not any(repo.store.exists(k) for k in one.store_keys())
    assert all(repo.store.exists(k) for k in two.store_keys())
    with pytest.raises(NotFound):
        repo.get_image(cid, one.image_id)
    with pytest.raises(NotFound):
        repo.remove_image(cid, one.image_id)
    manifest = repo.remove_item(cid, "drop")
    assert list(manifest.items) == ["keep"] and manifest.version == 5
    assert set(repo.store.list(catalog_prefix(cid))) == set(keep.item.store_keys()) | {
        manifest_key(cid)
    }
    with pytest.raises(NotFound):
        repo.remove_item(cid, "drop")


def test_delete_catalog_removes_every_key(repo: CatalogRepository) -> None:
    doomed = repo.create_catalog("doomed", "products", "t").catalog_id
    other = repo.create_catalog("other", "products", "t").catalog_id
    for n in range(3):
        repo.add_images(doomed, f"i{n}", {"n": n}, [_image(str(n))])
    repo.add_images(other, "x", None, [_image()])
    count_other = len(repo.store.list(catalog_prefix(other)))
    assert repo.delete_catalog(doomed) == 1 + 3 * 3  # manifest, 3 x (image + 2 features)
    assert repo.store.list(catalog_prefix(doomed)) == []
    assert len(repo.store.list(catalog_prefix(other))) == count_other
    assert [m.catalog_id for m in repo.list_catalogs()] == [other]
    with pytest.raises(NotFound):
        repo.get_manifest(doomed)
    with pytest.raises(NotFound):
        repo.add_images(doomed, "late", None, [_image()])
    assert repo.store.list(catalog_prefix(doomed)) == []


# --- concurrency ----------------------------------------------------------------------------
def _add_items(repo: CatalogRepository, catalog_id: str, prefix: str, count: int) -> None:
    for n in range(count):
        repo.add_images(catalog_id, f"{prefix}-{n}", {"by": prefix}, [_image(f"{prefix}{n}")], FP)


def _check_complete(repo: CatalogRepository, catalog_id: str, expected_items: set[str]) -> None:
    manifest = repo.get_manifest(catalog_id)
    assert set(manifest.items) == expected_items
    assert manifest.version == 1 + len(expected_items)  # every add bumped it exactly once
    keys = set(repo.store.list(catalog_prefix(catalog_id)))
    assert keys == manifest.referenced_keys() | {manifest_key(catalog_id)}  # no loss, no orphan


def test_concurrent_threads_lose_no_item(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("busy", "products", "t").catalog_id
    threads, per_thread = 8, 2
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            _add_items(repo, cid, f"t{n}", per_thread)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    _check_complete(repo, cid, {f"t{n}-{i}" for n in range(threads) for i in range(per_thread)})


def _process_worker(root: str, catalog_id: str, prefix: str, count: int) -> None:
    _add_items(CatalogRepository(LocalStore(root), backoff_s=0.002), catalog_id, prefix, count)


def test_concurrent_processes_lose_no_item_on_a_local_store(local_root: Path) -> None:
    """3 processes (as gunicorn workers) and 4 threads of this one write to one catalog."""
    repo = CatalogRepository(LocalStore(local_root), backoff_s=0.002)
    cid = repo.create_catalog("busy", "animals", "t").catalog_id
    ctx = multiprocessing.get_context("spawn")  # independent interpreters, as separate workers
    procs = [
        ctx.Process(target=_process_worker, args=(str(local_root), cid, f"p{n}", 4))
        for n in range(3)
    ]
    for p in procs:
        p.start()
    threads = [threading.Thread(target=_add_items, args=(repo, cid, f"t{n}", 2)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    expected = {f"p{n}-{i}" for n in range(3) for i in range(4)}
    expected |= {f"t{n}-{i}" for n in range(4) for i in range(2)}
    _check_complete(repo, cid, expected)


class _FlakyManifestStore(Store):
    """A real store whose compare-and-swap always fails as told (a crash, a race storm)."""

    def __init__(self, inner: Store, error: Exception) -> None:
        self.inner, self.error = inner, error

    def put_if(self, key: str, data: bytes, *, expected_etag: str | None) -> str:
        raise self.error

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        return self.inner.get_with_etag(key)

    def etag(self, key: str) -> str:
        return self.inner.etag(key)

    def put(self, key: str, data: bytes) -> str:
        return self.inner.put(key, data)

    def list_info(self, prefix: str = "") -> list:
        return self.inner.list_info(prefix)

    def list_children(self, prefix: str) -> list[str]:
        return self.inner.list_children(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)

    def check(self) -> None:
        self.inner.check()


def test_lost_races_until_give_up_discard_the_written_data(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    flaky = CatalogRepository(
        _FlakyManifestStore(repo.store, Conflict("lost")), max_retries=3, backoff_s=0.001
    )
    with pytest.raises(Conflict, match="gave up after 3"):
        flaky.add_images(cid, "a", None, [_image()])
    assert repo.store.list(catalog_prefix(cid)) == [manifest_key(cid)]


# --- orphans ----------------------------------------------------------------------------------
def test_crash_before_the_manifest_write_leaves_orphans_that_gc_removes(
    repo: CatalogRepository,
) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    kept = repo.add_images(cid, "kept", None, [_image("k")])
    crashing = CatalogRepository(_FlakyManifestStore(repo.store, StoreUnavailable("S3 down")))
    with pytest.raises(StoreUnavailable):
        crashing.add_images(cid, "lost", None, [_image("l")])
    # The outcome of the manifest write is unknown, so the data stays for gc to judge.
    manifest = repo.get_manifest(cid)
    assert "lost" not in manifest.items
    orphans = set(repo.store.list(catalog_prefix(cid))) - manifest.referenced_keys()
    orphans.discard(manifest_key(cid))
    assert len(orphans) == 3  # image + 2 features
    assert repo.gc_orphans(cid) == []  # younger than the grace period: maybe an add in flight
    assert repo.gc_orphans(cid, grace_s=0, now=time.time() + 60) == sorted(orphans)
    assert set(repo.store.list(catalog_prefix(cid))) == set(kept.item.store_keys()) | {
        manifest_key(cid)
    }
    assert repo.gc_orphans(cid, grace_s=0, now=time.time() + 60) == []


def test_gc_of_a_half_deleted_catalog_removes_everything(repo: CatalogRepository) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    repo.add_images(cid, "a", None, [_image()])
    repo.store.delete(manifest_key(cid))  # a delete_catalog that crashed after step one
    assert repo.list_catalogs() == [] and cid in repo.list_catalog_ids()
    assert len(repo.gc_orphans(cid, grace_s=0, now=time.time() + 60)) == 3
    assert repo.store.list(catalog_prefix(cid)) == []


def test_a_store_failing_at_the_reindex_swap_leaves_the_catalog_on_its_old_models(
    repo: CatalogRepository,
) -> None:
    cid = repo.create_catalog("c", "products", "t").catalog_id
    image = repo.add_images(cid, "a", None, [_image()], FP).images[0]
    before = repo.get_manifest(cid)
    crashing = CatalogRepository(_FlakyManifestStore(repo.store, StoreUnavailable("S3 down")))
    new_fp = Fingerprints(embedder="products:abcdef", verifier=FP.verifier)
    with pytest.raises(StoreUnavailable):
        crashing.replace_features(cid, {image.image_id: {"emb.npz": b"NEW"}}, new_fp)
    after = repo.get_manifest(cid)
    assert after.to_json() == before.to_json()  # old fingerprints, old blobs, same version
    assert all(repo.get_feature(k) for k in image.feature_keys.values())
    # the failed call cannot know whether its write landed: the new blob stays for gc
    [new_blob] = [k for k in repo.store.list(f"{catalog_prefix(cid)}features/") if ".r" in k]
    assert repo.gc_orphans(cid, grace_s=0, now=time.time() + 60) == [new_blob]
    assert set(repo.store.list(f"{catalog_prefix(cid)}features/")) == set(
        image.feature_keys.values()
    )

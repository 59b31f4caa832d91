"""Manifest serialisation: round trip, schema field, refusal of unreadable documents."""

from __future__ import annotations

import json

import pytest

from catalog.manifest import SCHEMA_VERSION, ImageRecord, Item, Manifest
from core.errors import StoreUnavailable


def _manifest() -> Manifest:
    record = ImageRecord(
        image_id="img1",
        key="catalogs/c1/images/dog-7/img1.jpg",
        content_type="image/jpeg",
        width=640,
        height=480,
        feature_keys={"emb.npy": "catalogs/c1/features/img1.emb.npy"},
    )
    return Manifest(
        catalog_id="c1",
        name="Shelter dogs",
        kind="animals",
        owner="tenant-a",
        version=7,
        embedder_fingerprint="mobilenet_v2:abc",
        items={"dog-7": Item("dog-7", {"name": "Rex", "tags": ["brown"]}, {"img1": record})},
    )


def test_round_trip_keeps_every_field() -> None:
    manifest = _manifest()
    data = manifest.to_json()
    assert json.loads(data)["schema"] == SCHEMA_VERSION
    again = Manifest.from_json(data)
    assert again == manifest
    assert again.to_json() == data
    assert again.image_count == 1
    assert again.referenced_keys() == {
        "catalogs/c1/images/dog-7/img1.jpg",
        "catalogs/c1/features/img1.emb.npy",
    }
    item, record = again.find_image("img1")
    assert item.item_id == "dog-7" and record.width == 640
    assert again.find_image("nope") is None


def test_new_manifest_is_empty_version_one() -> None:
    manifest = Manifest(catalog_id="c2", name="n", kind="products", owner="t")
    assert manifest.version == 1 and manifest.items == {} and manifest.image_count == 0
    assert manifest.updated_at == manifest.created_at
    assert manifest.embedder_fingerprint is None and manifest.verifier_fingerprint is None


def _broken(change) -> bytes:
    raw = _manifest().to_dict()
    change(raw)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",  # truncated write of another tool
        b"[1, 2]",  # JSON, not an object
        b"\xff\xfe",  # not UTF-8
        _broken(lambda r: r.update(schema=SCHEMA_VERSION + 1)),  # written by newer code
        _broken(lambda r: r.pop("schema")),  # no schema field
        _broken(lambda r: r.update(kind="cars")),  # unknown kind
        _broken(lambda r: r.pop("items")),  # missing field
        _broken(lambda r: r["items"]["dog-7"]["images"]["img1"].pop("key")),  # missing nested
        _broken(lambda r: r.update(version="seven")),  # wrong type
    ],
)
def test_unreadable_manifests_raise_store_unavailable(data: bytes) -> None:
    with pytest.raises(StoreUnavailable, match="manifest"):
        Manifest.from_json(data)

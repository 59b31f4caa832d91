"""Catalog and item routes: create, list, read, delete; uploads in every body format."""

from __future__ import annotations

import base64
import io
import json

from flask.testing import FlaskClient

from tests.api.conftest import ITEMS, catalog_photo


def test_catalog_lifecycle(client: FlaskClient) -> None:
    r = client.post("/v1/catalogs", json={"name": "Lost dogs", "kind": "animals"})
    assert r.status_code == 201
    cid = r.json["id"]
    assert r.json["kind"] == "animals" and r.json["version"] == 1
    assert [c["id"] for c in client.get("/v1/catalogs").json["catalogs"]] == [cid]
    assert client.get(f"/v1/catalogs/{cid}").json["items"] == 0
    assert client.delete(f"/v1/catalogs/{cid}").status_code == 204
    assert client.get(f"/v1/catalogs/{cid}").status_code == 404
    assert client.get("/v1/catalogs").json["catalogs"] == []


def test_items_lifecycle(client: FlaskClient, catalog: str) -> None:
    base = f"/v1/catalogs/{catalog}"
    listed = client.get(f"{base}/items").json["items"]
    assert sorted(i["item_id"] for i in listed) == sorted(ITEMS)
    summary = client.get(base).json
    assert (summary["items"], summary["images"], summary["version"]) == (3, 3, 4)
    assert summary["embedder"].startswith("products:")  # the kind's head

    # add a second image to an item, read it back byte for byte, delete it
    photo = catalog_photo("Oatly-Natural-Oatghurt")
    r = client.post(f"{base}/items/{ITEMS[0]}/images", data=photo, content_type="image/jpeg")
    assert r.status_code == 201
    image_id = r.json["image_ids"][0]
    got = client.get(f"{base}/items/{ITEMS[0]}/images/{image_id}")
    assert got.status_code == 200 and got.data == photo and got.mimetype == "image/jpeg"
    assert len(client.get(f"{base}/items/{ITEMS[0]}").json["images"]) == 2
    assert client.delete(f"{base}/items/{ITEMS[0]}/images/{image_id}").status_code == 204
    assert len(client.get(f"{base}/items/{ITEMS[0]}").json["images"]) == 1

    assert client.delete(f"{base}/items/{ITEMS[0]}").status_code == 204
    assert client.get(f"{base}/items/{ITEMS[0]}").status_code == 404
    assert client.get(base).json["items"] == 2


def test_upload_formats_and_metadata(client: FlaskClient) -> None:
    cid = client.post("/v1/catalogs", json={"name": "dogs", "kind": "animals"}).json["id"]
    photo = catalog_photo("Tropicana-Apple-Juice")
    meta = {"name": "Rex", "species": "dog", "contact": "+1 555 0100"}
    r = client.post(
        f"/v1/catalogs/{cid}/items",
        json={"images": [base64.b64encode(photo).decode()] * 2, "item_id": "rex", "metadata": meta},
    )
    assert r.status_code == 201 and r.json["item_id"] == "rex" and len(r.json["image_ids"]) == 2
    r = client.post(
        f"/v1/catalogs/{cid}/items",
        data={"images": (io.BytesIO(photo), "x.jpg"), "metadata": json.dumps({"sku": "42"})},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201 and r.json["item_id"]  # generated id
    r = client.post(f"/v1/catalogs/{cid}/items", data=photo, content_type="image/jpeg")
    assert r.status_code == 201
    item = client.get(f"/v1/catalogs/{cid}/items/rex").json
    assert item["metadata"] == meta and len(item["images"]) == 2


def test_existing_item_id_conflicts(client: FlaskClient, catalog: str) -> None:
    r = client.post(
        f"/v1/catalogs/{catalog}/items",
        data={"images": (io.BytesIO(catalog_photo(ITEMS[1])), "x.jpg"), "item_id": ITEMS[1]},
        content_type="multipart/form-data",
    )
    assert r.status_code == 409

"""Upload warnings: each image's quality flags, missing object and duplicates (within the
upload and against the catalog) in the 201 answer; ``refuse=`` turns them into a 422 with
nothing stored."""

from __future__ import annotations

import io

import cv2
import numpy as np

from core.images import decode_image, encode_jpeg
from tests.api.conftest import ITEMS, catalog_photo, query_photo


def read_image_bytes(data: bytes) -> np.ndarray:
    return decode_image(data)


def _post(client, url: str, photos: list[bytes], **form):
    data = {"images": [(io.BytesIO(p), f"{i}.jpg") for i, p in enumerate(photos)]} | form
    return client.post(url, data=data, content_type="multipart/form-data")


def test_warnings_in_the_answer(client) -> None:
    cid = client.post("/v1/catalogs", json={"name": "w", "kind": "products"}).json["id"]
    r = _post(client, f"/v1/catalogs/{cid}/items", [catalog_photo(ITEMS[0])], item_id="a")
    assert r.status_code == 201 and len(r.json["warnings"]) == 1
    assert not {"blurry", "dark", "over_exposed"} & set(r.json["warnings"][0])  # on white
    image_id = r.json["image_ids"][0]
    good = read_image_bytes(query_photo(ITEMS[1]))  # a shelf photo
    blurry = cv2.GaussianBlur(good, (0, 0), 6)
    dark = (good * 0.08).astype(np.uint8)
    photos = [encode_jpeg(good), encode_jpeg(blurry), encode_jpeg(dark), encode_jpeg(good)]
    photos.append(catalog_photo(ITEMS[0]))  # the same photo as item a's
    r = _post(client, f"/v1/catalogs/{cid}/items", photos, item_id="b")
    assert r.status_code == 201, r.json
    w = r.json["warnings"]
    assert len(w) == 5 == len(r.json["image_ids"])
    assert not any(x.startswith(("blurry", "dark")) for x in w[0])
    assert "blurry" in w[1] and "dark" in w[2]
    assert "exact_duplicate of upload image 0" in w[3]
    assert any(x.startswith("near_duplicate of image") or x.startswith("exact_duplicate of image")
               for x in w[4]) and f"of image {image_id} of item a" in " ".join(w[4])  # fmt: skip
    flat = np.full((240, 320, 3), 128, np.uint8)  # nothing in it
    r = _post(client, f"/v1/catalogs/{cid}/items/b/images", [encode_jpeg(flat)])
    assert r.status_code == 201 and "no_object" in r.json["warnings"][0]
    assert "low_information" in r.json["warnings"][0]


def test_refuse_stores_nothing(client) -> None:
    cid = client.post("/v1/catalogs", json={"name": "r", "kind": "products"}).json["id"]
    good = read_image_bytes(query_photo(ITEMS[2]))
    blurry = encode_jpeg(cv2.GaussianBlur(good, (0, 0), 6))
    url = f"/v1/catalogs/{cid}/items"
    r = _post(client, url + "?refuse=blurry,dark", [encode_jpeg(good), blurry], item_id="x")
    assert r.status_code == 422, r.json
    err = r.json["error"]
    assert "nothing was stored" in err["message"]
    assert err["details"]["refused"] == [{"image": 1, "warnings": ["blurry"]}]
    assert client.get(f"/v1/catalogs/{cid}").json["items"] == 0
    r = _post(client, url, [blurry], item_id="x", refuse="all")  # as a form field
    assert r.status_code == 422 and "blurry" in r.json["error"]["details"]["refused"][0]["warnings"]
    r = _post(client, url, [encode_jpeg(good)], item_id="x", refuse="blurry")
    assert r.status_code == 201 and "blurry" not in r.json["warnings"][0]
    assert client.get(f"/v1/catalogs/{cid}").json["items"] == 1
    assert _post(client, url + "?refuse=shiny", [encode_jpeg(good)]).status_code == 422

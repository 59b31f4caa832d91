"""Bad input gets a clear error with a proper status, in one JSON shape, never a crash."""

from __future__ import annotations

import io

import pytest

from api import create_app
from tests.api.conftest import ITEMS, catalog_photo
from tests.images import png_header_only

JPEG = catalog_photo(ITEMS[0])

CASES = [
    # (method, path under the catalog, kwargs, status)
    ("post", "/detect", {"data": b"plain text", "content_type": "text/plain"}, 415),  # wrong type
    (
        "post",
        "/detect",
        {"data": b"%PDF-1.4 ...", "content_type": "image/jpeg"},
        415,
    ),  # not an image
    ("post", "/detect", {"data": JPEG[: len(JPEG) // 3], "content_type": "image/jpeg"}, 422),  # cut
    ("post", "/detect", {"data": b""}, 422),  # empty body
    ("post", "/detect", {"data": b"", "content_type": "image/jpeg"}, 422),  # empty image
    ("post", "/detect", {"data": png_header_only(40000, 40000), "content_type": "image/png"}, 413),
    ("post", "/detect", {"json": {"image": "not base64!"}}, 422),
    ("post", "/detect", {"json": {"nothing": 1}}, 422),
    ("post", "/detect", {"data": "{not json", "content_type": "application/json"}, 422),
    ("post", "/detect?top_k=0", {"data": JPEG, "content_type": "image/jpeg"}, 422),
    ("post", "/detect?top_k=1000", {"data": JPEG, "content_type": "image/jpeg"}, 422),
    ("post", "/detect?top_k=abc", {"data": JPEG, "content_type": "image/jpeg"}, 422),
    ("post", "/detect?classes=unicorn", {"data": JPEG, "content_type": "image/jpeg"}, 422),
    ("post", "/search?min_score=2", {"data": JPEG, "content_type": "image/jpeg"}, 422),
    (
        "post",
        "/items",
        {
            "data": {"images": (io.BytesIO(b"GIF89a-broken"), "x.gif")},
            "content_type": "multipart/form-data",
        },
        422,  # a GIF header with nothing readable behind it
    ),
    ("post", "/items", {"data": {"item_id": "x"}, "content_type": "multipart/form-data"}, 422),
    (
        "post",
        "/items",
        {
            "data": {"images": (io.BytesIO(JPEG), "x.jpg"), "item_id": "../etc"},
            "content_type": "multipart/form-data",
        },
        422,
    ),
    (
        "post",
        "/items",
        {
            "data": {"images": (io.BytesIO(JPEG), "x.jpg"), "metadata": "{oops"},
            "content_type": "multipart/form-data",
        },
        422,
    ),
    ("post", "/items", {"json": {"images": []}}, 422),  # no image: not an empty item
    ("post", "/items", {"json": {"images": [], "item_id": 7}}, 422),
    ("post", "/items", {"json": {"images": ["x"], "metadata": "{}"}}, 422),  # JSON: an object
    ("get", "/items/no-such-item", {}, 404),
    ("delete", "/items/no-such-item", {}, 404),
    ("delete", f"/items/{ITEMS[0]}/images/nope", {}, 404),
    ("post", "/items/no-such-item/images", {"data": JPEG, "content_type": "image/jpeg"}, 404),
    ("put", "/detect", {}, 405),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), CASES)
def test_bad_requests(shop, method, path, kwargs, status) -> None:
    client, catalog = shop
    r = getattr(client, method)(f"/v1/catalogs/{catalog}{path}", **kwargs)
    assert r.status_code == status, r.json
    error = r.json["error"]
    assert error["status"] == status and error["message"] and error["code"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ""), ("delete", ""), ("get", "/items"), ("post", "/detect"), ("post", "/search")],
)
def test_unknown_catalog_is_404(shop, method: str, path: str) -> None:
    client, catalog = shop
    kwargs = {"data": JPEG, "content_type": "image/jpeg"} if method == "post" else {}
    r = getattr(client, method)(f"/v1/catalogs/doesnotexist{path}", **kwargs)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "status"),
    [({"name": ""}, 422), ({"name": "x", "kind": "cars"}, 422), ({}, 422), (["x"], 422)],
)
def test_bad_catalog_bodies(shop, body, status: int) -> None:
    client, catalog = shop
    r = client.post("/v1/catalogs", json=body)
    assert r.status_code == status and r.json["error"]["status"] == status


def test_body_over_the_limit_is_413(api_settings, pipeline) -> None:
    small = api_settings.model_copy(update={"max_body_bytes": 10_000})
    c = create_app(small, pipeline=pipeline).test_client()
    cid = c.post("/v1/catalogs", json={"name": "x"}).json["id"]
    r = c.post(f"/v1/catalogs/{cid}/detect", data=b"\xff" * 20_000, content_type="image/jpeg")
    assert r.status_code == 413 and r.json["error"]["status"] == 413


def test_too_many_images_in_one_request_is_413(api_settings, pipeline) -> None:
    c = create_app(
        api_settings.model_copy(update={"max_images_per_request": 2}), pipeline=pipeline
    ).test_client()
    cid = c.post("/v1/catalogs", json={"name": "x"}).json["id"]
    files = [(io.BytesIO(JPEG), f"{i}.jpg") for i in range(3)]
    r = c.post(
        f"/v1/catalogs/{cid}/items", data={"images": files}, content_type="multipart/form-data"
    )
    assert r.status_code == 413
    assert c.get(f"/v1/catalogs/{cid}").json["items"] == 0  # nothing half-written


def test_unknown_route_uses_the_error_shape(shop) -> None:
    client, catalog = shop
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json["error"]["status"] == 404

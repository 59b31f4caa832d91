"""Editing an item's metadata (``PATCH .../items/<item_id>``) and the service's ``/v1/info``."""

from __future__ import annotations

import io
import json

from flask.testing import FlaskClient

from core.kinds import KINDS
from tests.api.conftest import ALICE, BOB, ITEMS, catalog_photo


def _item(client: FlaskClient, cid: str, metadata: dict, headers: dict | None = None) -> None:
    r = client.post(
        f"/v1/catalogs/{cid}/items",
        data={
            "images": (io.BytesIO(catalog_photo(ITEMS[0])), "a.jpg"),
            "item_id": "milk",
            "metadata": json.dumps(metadata),
        },
        content_type="multipart/form-data",
        headers=headers or {},
    )
    assert r.status_code == 201, r.json


def test_patch_merges_removes_nulls_or_replaces(client: FlaskClient) -> None:
    cid = client.post("/v1/catalogs", json={"name": "shop"}).json["id"]
    _item(client, cid, {"name": "milk", "price": 1.2})
    version = client.get(f"/v1/catalogs/{cid}").json["version"]
    url = f"/v1/catalogs/{cid}/items/milk"
    # table: body sent -> metadata stored
    cases = [
        (
            {"metadata": {"price": 1.5, "shelf": "A3"}},
            {"name": "milk", "price": 1.5, "shelf": "A3"},
        ),
        ({"metadata": {"shelf": None}}, {"name": "milk", "price": 1.5}),  # null removes a key
        ({"metadata": {"owner": "x"}, "replace": True}, {"owner": "x"}),
        ({"metadata": {}, "replace": True}, {}),
    ]
    for body, stored in cases:
        r = client.patch(url, json=body)
        assert r.status_code == 200, r.json
        assert r.json["metadata"] == stored and r.json["item_id"] == "milk"
        assert client.get(url).json["metadata"] == stored
    assert client.get(f"/v1/catalogs/{cid}").json["version"] == version + len(cases)
    assert len(client.get(url).json["images"]) == 1  # the images are untouched


def test_patch_refuses_bad_bodies_and_unknown_items(client: FlaskClient) -> None:
    cid = client.post("/v1/catalogs", json={"name": "shop"}).json["id"]
    _item(client, cid, {"name": "milk"})
    url = f"/v1/catalogs/{cid}/items/milk"
    # table: body -> status (422: the project's one error shape)
    for body, status in [
        ({"metadata": ["a"]}, 422),  # not an object
        ({"metadata": "x"}, 422),
        ({}, 422),  # no metadata
        ({"metadata": {}, "replace": "yes"}, 422),
    ]:
        r = client.patch(url, json=body)
        assert r.status_code == status and r.json["error"]["code"] == "bad_input", (body, r.json)
    assert client.patch(url, data=b"x", content_type="text/plain").status_code == 422
    assert client.patch(url + "x", json={"metadata": {}}).status_code == 404
    assert client.patch("/v1/catalogs/nope/items/milk", json={"metadata": {}}).status_code == 404
    assert client.get(url).json["metadata"] == {"name": "milk"}


def test_patch_is_guarded_by_the_api_keys(keyed_client: FlaskClient) -> None:
    alice = {"X-API-Key": ALICE}
    cid = keyed_client.post("/v1/catalogs", json={"name": "a"}, headers=alice).json["id"]
    _item(keyed_client, cid, {"name": "milk"}, headers=alice)
    url = f"/v1/catalogs/{cid}/items/milk"
    assert keyed_client.patch(url, json={"metadata": {"a": 1}}).status_code == 401
    bob = {"X-API-Key": BOB}
    assert keyed_client.patch(url, json={"metadata": {"a": 1}}, headers=bob).status_code == 404
    assert keyed_client.get(url, headers=alice).json["metadata"] == {"name": "milk"}


def test_info_names_workers_and_the_models_of_each_kind(keyed_client: FlaskClient) -> None:
    assert keyed_client.get("/v1/info").status_code == 401
    r = keyed_client.get("/v1/info", headers={"X-API-Key": ALICE})
    assert r.status_code == 200
    info = r.json
    app = keyed_client.application
    settings = app.extensions["sighting"].settings
    pipeline = app.extensions["sighting"].pipeline
    assert info["workers"] == settings.workers and info["auth"] is True and info["admin"] is False
    assert info["worker"] == int(r.headers["X-Sighting-Worker"])
    assert set(info["kinds"]) == set(KINDS)
    for kind, models in info["kinds"].items():
        assert models["embedder"] == pipeline.embedder_for(kind).fingerprint
        assert models["detector"] == settings.detector
        assert models["threshold"] == pipeline.calibration(kind).threshold
    assert info["kinds"]["products"]["embedder"] != info["kinds"]["animals"]["embedder"]
    assert info["limits"]["max_top_k"] == settings.max_top_k


def test_the_console_is_served_with_a_strict_policy_and_gives_no_data(
    keyed_client: FlaskClient,
) -> None:
    r = keyed_client.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/")
    page = keyed_client.get("/console/")
    assert page.status_code == 200 and b'<script type="module" src="/console/static/main.js">' in (
        page.data
    )
    assert b"<script>" not in page.data  # no inline script: the policy would block it
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    js = keyed_client.get("/console/static/main.js")
    assert js.status_code == 200 and "javascript" in js.content_type
    assert keyed_client.get("/console/static/nope.js").status_code == 404
    # nothing of the console is in the API document, and the API still wants its key
    assert not [p for p in keyed_client.get("/openapi.json").json["paths"] if "console" in p]
    assert keyed_client.get("/v1/catalogs").status_code == 401

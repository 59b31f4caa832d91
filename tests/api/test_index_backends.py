"""The same API flows on both index backends, with the same answers.

Two apps over the same real models, each with its own store: one indexes in the worker
(``faiss``), one in a Milvus Lite file (``milvus``). Every flow (upload, search, detect, add and
delete an image, delete an item, two tenants) runs on both, and the answers must be identical
once the ids each store draws (catalog and image ids) are replaced by names of ours and the
timings dropped. FLAT is exact on both, so rankings and scores agree; scores are compared to
1e-4 (the engines add the same float32 products in another order).

The whole API suite runs on Milvus with ``SIGHTING_INDEX_BACKEND=milvus pytest tests/api`` (one
Lite file per session, `tests.conftest.milvus_lite_file`); this module keeps the backend
proven in every full run.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from api import create_app
from matching.index import IndexConfig
from matching.pipeline import Pipeline
from tests.api.conftest import ALICE, BOB, ITEMS, catalog_photo, query_photo
from tests.conftest import offline_settings

BACKENDS = ("faiss", "milvus")
#: Keys whose values differ between any two runs (clocks, durations, ids of requests).
VOLATILE = {"timings", "created_at", "updated_at", "added_at", "request_id", "took_ms"}


@dataclass
class App:
    """One backend's app, and the names this test gave the ids its store drew."""

    backend: str
    client: FlaskClient
    config: IndexConfig
    names: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, url: str, key: str = ALICE, **kwargs) -> tuple[int, object]:
        for real, name in self.names.items():
            url = url.replace(f"{{{name}}}", real)
        r = getattr(self.client, method)(url, headers={"X-API-Key": key}, **kwargs)
        return r.status_code, self.plain(r.json) if r.is_json else r.data

    def plain(self, body: object) -> object:
        """``body`` with drawn ids replaced by our names, floats to 4 places, no timings."""
        if isinstance(body, dict):
            return {k: self.plain(v) for k, v in body.items() if k not in VOLATILE}
        if isinstance(body, list):
            return [self.plain(v) for v in body]
        if isinstance(body, str):
            for real, name in self.names.items():
                body = body.replace(real, f"{{{name}}}")
            return body
        if isinstance(body, float):
            return round(body, 4)
        return body


@pytest.fixture(scope="module")
def apps(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[App]]:
    """The two apps (tenants alice and bob), each on a fresh store."""
    out = []
    for backend in BACKENDS:
        root: Path = tmp_path_factory.mktemp(f"backend-{backend}")
        settings = offline_settings(
            root / "store",
            sync_interval_s=0.0,
            async_verify=False,
            api_keys=[ALICE, BOB],
            index_backend=backend,
            milvus_uri=str(root / "milvus.db") if backend == "milvus" else "",
        )
        client = create_app(settings, pipeline=pipeline).test_client()
        out.append(App(backend, client, IndexConfig.from_settings(settings)))
    yield out


def both(apps: list[App], method: str, url: str, **kwargs) -> tuple[int, object]:
    """The answer of both apps to one request: asserted identical, returned once."""
    answers = []
    for app in apps:
        if "data" in kwargs and isinstance(kwargs["data"], dict):  # a fresh stream per app
            kwargs = kwargs | {
                "data": {
                    k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v
                    for k, v in kwargs["data"].items()
                }
            }
        answers.append(app.call(method, url, **kwargs))
    assert answers[0] == answers[1], f"{method} {url}: faiss and milvus answer differently"
    return answers[0]


def upload(apps: list[App], catalog: str, item: str, photo: bytes, name: str, key=ALICE) -> None:
    """One photo added to ``item`` on both apps; its image id is called ``name``."""
    for app in apps:
        r = app.client.post(
            f"/v1/catalogs/{app_id(app, catalog)}/items",
            data={"images": (io.BytesIO(photo), f"{item}.jpg"), "item_id": item},
            content_type="multipart/form-data",
            headers={"X-API-Key": key},
        )
        assert r.status_code == 201, (app.backend, r.json)
        app.names[r.json["image_ids"][0]] = name


def add_image(apps: list[App], catalog: str, item: str, photo: bytes, name: str) -> None:
    """One more photo of an existing ``item`` on both apps; its image id is called ``name``."""
    for app in apps:
        r = app.client.post(
            f"/v1/catalogs/{app_id(app, catalog)}/items/{item}/images",
            data=photo,
            content_type="image/jpeg",
            headers={"X-API-Key": ALICE},
        )
        assert r.status_code == 201, (app.backend, r.json)
        app.names[r.json["image_ids"][0]] = name


def app_id(app: App, name: str) -> str:
    return next(real for real, ours in app.names.items() if ours == name)


def new_catalog(apps: list[App], name: str, key=ALICE) -> None:
    for app in apps:
        r = app.client.post(
            "/v1/catalogs", json={"name": name, "kind": "products"}, headers={"X-API-Key": key}
        )
        assert r.status_code == 201, r.json
        app.names[r.json["id"]] = name


def milvus_rows(app: App, catalog: str) -> int:
    """Rows the engine holds for a catalog (proves the milvus app searched Milvus)."""
    from matching.milvus_index import META, engine_for

    engine = engine_for(app.config)
    rows = 0
    for name in engine.call("list", "list_collections"):
        if name.startswith("sighting_") and name != META:
            rows += len(
                engine.call(
                    "query",
                    "query",
                    name,
                    filter=f'catalog == "{app_id(app, catalog)}"',
                    output_fields=["pk"],
                    consistency_level="Strong",
                )
            )
    return rows


@pytest.fixture(scope="module")
def shop(apps: list[App]) -> str:
    """Alice's catalog of the three `ITEMS`, one photo each, on both apps."""
    new_catalog(apps, "shop")
    for item in ITEMS:
        upload(apps, "shop", item, catalog_photo(item), f"{item}-1")
    assert milvus_rows(apps[1], "shop") == 3
    return "shop"


def search(apps: list[App], catalog: str, photo: bytes, key=ALICE, query: str = "") -> list:
    status, body = both(
        apps,
        "post",
        f"/v1/catalogs/{{{catalog}}}/search?top_k=100{query}",
        key=key,
        data=photo,
        content_type="image/jpeg",
    )
    assert status == 200, body
    return body["matches"]


def test_search_and_detect_answer_the_same(apps: list[App], shop: str) -> None:
    for item in ITEMS:
        matches = search(apps, shop, query_photo(item))
        assert sorted(m["item_id"] for m in matches) == sorted(ITEMS)  # nothing hidden
        assert matches[0]["item_id"] == item
    status, body = both(
        apps,
        "post",
        f"/v1/catalogs/{{{shop}}}/detect",
        data=query_photo(ITEMS[0]),
        content_type="image/jpeg",
    )
    assert status == 200 and body["detections"]
    best = max((d["matches"][0] for d in body["detections"]), key=lambda m: m["score"])
    assert best["item_id"] == ITEMS[0] and best["verified"]


def test_added_image_is_found_and_deleted_one_never_returned(apps: list[App], shop: str) -> None:
    # a second photo of item 0 that is the query itself: it must be the best image of item 0
    photo = query_photo(ITEMS[0], 1)
    add_image(apps, shop, ITEMS[0], photo, "extra")
    matches = search(apps, shop, photo)
    assert matches[0]["item_id"] == ITEMS[0]
    assert "extra" in str(matches[0])  # the new image answered, under our name on both
    assert milvus_rows(apps[1], shop) == 4
    base = f"/v1/catalogs/{{{shop}}}/items/{ITEMS[0]}/images"
    assert both(apps, "delete", f"{base}/{{extra}}")[0] == 204
    matches = search(apps, shop, photo)
    assert "extra" not in str(matches)
    assert sorted(m["item_id"] for m in matches) == sorted(ITEMS)
    assert milvus_rows(apps[1], shop) == 3


def test_deleted_item_leaves_the_ranking(apps: list[App]) -> None:
    new_catalog(apps, "shrinking")
    for item in ITEMS:
        upload(apps, "shrinking", item, catalog_photo(item), f"shrinking-{item}")
    assert both(apps, "delete", f"/v1/catalogs/{{shrinking}}/items/{ITEMS[2]}")[0] == 204
    matches = search(apps, "shrinking", query_photo(ITEMS[2]))
    assert sorted(m["item_id"] for m in matches) == sorted(ITEMS[:2])
    assert milvus_rows(apps[1], "shrinking") == 2
    assert both(apps, "delete", "/v1/catalogs/{shrinking}")[0] == 204
    assert milvus_rows(apps[1], "shrinking") == 0


def test_tenants_never_see_each_other(apps: list[App], shop: str) -> None:
    # bob's catalog holds the item alice's query shows; alice's search never returns it
    new_catalog(apps, "bobs", key=BOB)
    upload(apps, "bobs", "bob-milk", catalog_photo(ITEMS[0]), "bob-milk-1", key=BOB)
    matches = search(apps, shop, query_photo(ITEMS[0]))
    assert "bob" not in str(matches)
    bobs = search(apps, "bobs", query_photo(ITEMS[0]), key=BOB)
    assert [m["item_id"] for m in bobs] == ["bob-milk"]
    status, _ = both(
        apps,
        "post",
        "/v1/catalogs/{bobs}/search",
        key=ALICE,
        data=query_photo(ITEMS[0]),
        content_type="image/jpeg",
    )
    assert status == 404  # alice cannot search bob's catalog


def test_empty_catalog_answers_empty(apps: list[App]) -> None:
    new_catalog(apps, "empty")
    assert search(apps, "empty", query_photo(ITEMS[0])) == []
    assert milvus_rows(apps[1], "empty") == 0

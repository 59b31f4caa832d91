"""Matching a frame reads no manifest from the store: the worker's cached one answers."""

from __future__ import annotations

from collections import Counter

import pytest

from api import create_app
from catalog.repository import manifest_key
from tests.api.conftest import ALICE, BOB, ITEMS, catalog_photo, fill_catalog, query_photo


class CountingStore:
    """A store that counts the objects read through it (everything else is passed on)."""

    def __init__(self, store) -> None:
        self._store = store
        self.reads: Counter[str] = Counter()

    def get_with_etag(self, key: str):
        self.reads[key] += 1
        return self._store.get_with_etag(key)

    def get(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def __getattr__(self, name: str):
        return getattr(self._store, name)


@pytest.fixture()
def counted(api_settings, pipeline):
    """A keyed app whose catalogs are synced at most once an hour, its counting store, and a
    catalog of alice's."""
    settings = api_settings.model_copy(update={"sync_interval_s": 3600.0, "api_keys": [ALICE, BOB]})
    app = create_app(settings, pipeline=pipeline)
    repository = app.extensions["sighting"].repository
    store = CountingStore(repository.store)
    repository.store = store
    client = app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = ALICE
    return client, store, fill_catalog(client)


def test_100_detects_read_the_manifest_at_most_once(counted) -> None:
    client, store, catalog = counted
    frame = catalog_photo(ITEMS[0])  # one object on white: a quick frame
    store.reads.clear()
    for _ in range(100):
        r = client.post(
            f"/v1/catalogs/{catalog}/detect?verify=false&top_k=1",
            data=frame,
            content_type="image/jpeg",
        )
        assert r.status_code == 200, r.json
    assert store.reads[manifest_key(catalog)] <= 1, store.reads


def test_the_cached_manifest_still_hides_another_tenants_catalog(counted) -> None:
    client, store, catalog = counted
    frame = query_photo(ITEMS[0])
    ok = client.post(
        f"/v1/catalogs/{catalog}/detect?verify=false", data=frame, content_type="image/jpeg"
    )
    assert ok.status_code == 200, ok.json  # alice's view is now cached
    store.reads.clear()
    for path in ("detect", "search", "streams/s1/frames"):
        r = client.post(
            f"/v1/catalogs/{catalog}/{path}?verify=false",
            data=frame,
            content_type="image/jpeg",
            headers={"X-API-Key": BOB},
        )
        assert r.status_code == 404, (path, r.json)
        assert r.json["error"]["code"] == "not_found"
    assert store.reads[manifest_key(catalog)] == 0, store.reads


def test_a_foreign_catalog_is_refused_before_its_view_is_built(counted) -> None:
    client, store, catalog = counted
    # uploads build the view (their duplicate warnings search it): start from a cold worker
    client.application.extensions["sighting"].catalogs.invalidate(catalog)
    store.reads.clear()
    r = client.post(
        f"/v1/catalogs/{catalog}/detect?verify=false",
        data=query_photo(ITEMS[0]),
        content_type="image/jpeg",
        headers={"X-API-Key": BOB},
    )
    assert r.status_code == 404, r.json
    features = [k for k in store.reads if k.endswith(".npz")]
    assert features == [], features  # no vector blob was read for bob

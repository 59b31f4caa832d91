"""Fixtures for the API tests: one loaded pipeline per session, a fresh app and store per test."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from api import create_app
from core.settings import Settings
from matching.pipeline import Pipeline
from tests.conftest import offline_settings

GROCERY = Path(__file__).resolve().parents[3] / "shared" / "data" / "grocery"
ITEMS = ("Arla-Standard-Milk", "Oatly-Natural-Oatghurt", "Tropicana-Apple-Juice")

ADMIN, ALICE, BOB = "admin-key", "alice-key", "bob-key"


def catalog_photo(item: str) -> bytes:
    """The catalog ("iconic") photo of a grocery item."""
    return next((GROCERY / "catalog" / item).iterdir()).read_bytes()


def query_photo(item: str, index: int = 0) -> bytes:
    """A real shelf photo of a grocery item."""
    return sorted((GROCERY / "queries" / item).iterdir())[index].read_bytes()


@pytest.fixture()
def api_settings(settings: Settings) -> Settings:
    """Offline settings with a fresh local store and an always-fresh catalog cache."""
    return settings.model_copy(update={"sync_interval_s": 0.0})


@pytest.fixture(scope="session")
def shop(pipeline: Pipeline, weights_dir: Path, tmp_path_factory) -> tuple[FlaskClient, str]:
    """A client and a catalog of the three `ITEMS`, shared by tests that only read."""
    settings = offline_settings(
        tmp_path_factory.mktemp("shop"), sync_interval_s=0.0, async_verify=False
    )
    client = create_app(settings, pipeline=pipeline).test_client()
    return client, fill_catalog(client)


@pytest.fixture()
def client(api_settings: Settings, pipeline: Pipeline) -> FlaskClient:
    """A test client of an app without API keys (the embedded default)."""
    return create_app(api_settings, pipeline=pipeline).test_client()


@pytest.fixture()
def keyed_client(api_settings: Settings, pipeline: Pipeline) -> FlaskClient:
    """A test client of an app with two tenants (alice, bob) and an admin key."""
    settings = api_settings.model_copy(update={"api_keys": [ALICE, BOB], "admin_keys": [ADMIN]})
    return create_app(settings, pipeline=pipeline).test_client()


def fill_catalog(client: FlaskClient) -> str:
    """Create a products catalog holding the three `ITEMS`, one photo each."""
    cid = client.post("/v1/catalogs", json={"name": "shop", "kind": "products"}).json["id"]
    for item in ITEMS:
        r = client.post(
            f"/v1/catalogs/{cid}/items",
            data={"images": (io.BytesIO(catalog_photo(item)), f"{item}.jpg"), "item_id": item},
            content_type="multipart/form-data",
        )
        assert r.status_code == 201, r.json
    return cid


@pytest.fixture()
def catalog(client: FlaskClient) -> str:
    """A fresh products catalog of the three `ITEMS` in the `client`'s own store."""
    return fill_catalog(client)

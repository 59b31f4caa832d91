"""Fixtures for the catalog tests: a moto S3 server on 127.0.0.1 and both store backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.store import Store
from catalog.stores import open_store
from core.settings import Settings
from tests.s3_server import MotoS3

S3_PREFIX = "pfx"  # exercise the key prefix mapping on every S3 test


@pytest.fixture(params=["local", "s3"])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings for a fresh, empty store of each backend (local folder; new S3 bucket)."""
    if request.param == "local":
        return settings
    server: MotoS3 = request.getfixturevalue("moto_s3")
    return server.store_settings(settings, bucket=server.new_bucket(), prefix=S3_PREFIX)


@pytest.fixture()
def store(store_settings: Settings) -> Store:
    """A fresh store of each backend, built by `open_store` as the service does."""
    return open_store(store_settings)


@pytest.fixture()
def local_root(settings: Settings) -> Path:
    """The local store's folder in the `settings` fixture."""
    return settings.data_dir

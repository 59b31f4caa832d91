"""Both store backends (local folder, moto's S3 on 127.0.0.1), as the catalog tests use them."""

from tests.catalog.conftest import local_root, store, store_settings  # noqa: F401

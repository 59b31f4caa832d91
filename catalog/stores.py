"""Build the catalog store the settings name: `open_store`.

Apart from `catalog.store` (the interface both stores implement) so that the interface never
imports its implementations: ``store <- local_store, s3_store <- stores``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.local_store import LocalStore
from catalog.s3_store import S3Config, S3Store

if TYPE_CHECKING:
    from catalog.store import Store
    from core.settings import Settings


def open_store(settings: Settings) -> Store:
    """Build the store the settings name (``SIGHTING_STORAGE=local|s3``); touches nothing.

    Args:
        settings: ``storage``, ``data_dir`` for local; ``s3_*`` fields for S3.
    """
    if settings.storage == "s3":
        return S3Store(S3Config.from_settings(settings))
    return LocalStore(settings.data_dir)

"""What one worker holds: settings, the store's repository, the models and the catalog cache.

Kept in ``app.extensions["sighting"]`` and reached through `state()`; each gunicorn worker
builds its own (models are never loaded in the master: see gunicorn.conf.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import current_app

from api.catalog_cache import CatalogCache
from catalog.repository import CatalogRepository
from core.settings import Settings
from matching.pipeline import Pipeline


@dataclass
class SightingState:
    """Per-worker state of the service."""

    settings: Settings
    repository: CatalogRepository
    pipeline: Pipeline
    catalogs: CatalogCache
    # one model call at a time per worker: torch already uses every core for one call, and
    # interleaving calls from gunicorn threads only adds memory and latency
    model_lock: threading.Lock = field(default_factory=threading.Lock)


def state() -> SightingState:
    """The current app's `SightingState`."""
    return current_app.extensions["sighting"]

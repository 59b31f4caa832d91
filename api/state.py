"""What one worker holds: settings, the store's repository, the models and the catalog cache.

Kept in ``app.extensions["sighting"]`` and reached through `state()`; each gunicorn worker
builds its own (models are never loaded in the master: see gunicorn.conf.py).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from flask import current_app

from catalog.cache import CatalogCache
from catalog.repository import CatalogRepository
from core.errors import Busy
from core.settings import Settings
from matching.pipeline import Pipeline


class ModelQueue:
    """First come, first served access to a worker's models, with a bounded queue.

    torch already uses every core for one call, so calls run one at a time; waiters are
    served in arrival order (a plain Lock lets late arrivals overtake, which stretches the
    tail latency), and beyond ``max_waiting`` a request is refused at once with 503 and
    Retry-After instead of waiting past the clients' timeouts.
    """

    def __init__(self, max_waiting: int = 16) -> None:
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self) -> None:
        with self._lock:
            if not self._held and not self._waiters:
                self._held = True
                return
            if len(self._waiters) >= self.max_waiting:
                raise Busy(f"{len(self._waiters)} requests are waiting for this worker's models")
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # the releasing holder hands the models over directly

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False

    @property
    def waiting(self) -> int:
        """Requests waiting now."""
        return len(self._waiters)


@dataclass
class SightingState:
    """Per-worker state of the service."""

    settings: Settings
    repository: CatalogRepository
    pipeline: Pipeline
    catalogs: CatalogCache
    model_lock: ModelQueue = field(default_factory=ModelQueue)


def state() -> SightingState:
    """The current app's `SightingState`."""
    return current_app.extensions["sighting"]

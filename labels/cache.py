"""Fitted label sets kept per worker, for live requests (``labels=<label set>`` on detect).

Fitting a label set embeds all its example photos; a worker keeps the fitted `ExampleLabeler`
of the label sets it has served (least recently used dropped beyond ``max_sets``) and refits one
when its catalog's manifest version has changed, so a label added through any worker is seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cachetools import FIFOCache, LRUCache

from embedding.embedder import Embedder
from labels.examples import ExampleLabeler
from labels.labelset import read_label_catalog


class LabelerCache:
    """Label set (catalog) id -> fitted `ExampleLabeler`, refitted on a new manifest version.

    The manifest is re-read at most every ``sync_interval_s`` per label set (as the catalog
    cache does), so a stream's frames do not each cost a store read.
    """

    def __init__(
        self,
        repository: object,
        embedder: Embedder,
        max_sets: int = 16,
        sync_interval_s: float = 0.0,
    ) -> None:
        self.repository = repository  # a catalog.repository.CatalogRepository
        self.embedder = embedder
        self.max_sets = max_sets
        self.sync_interval_s = sync_interval_s
        self._fitted: LRUCache[str, tuple[int, ExampleLabeler]] = LRUCache(maxsize=max(max_sets, 0))
        # id -> (read at, manifest); the oldest read goes beyond 4 x max_sets
        self._manifests: FIFOCache[str, tuple[float, object]] = FIFOCache(
            maxsize=4 * max(max_sets, 0)
        )
        self._lock = threading.Lock()

    def manifest(self, catalog_id: str):
        """The label set's manifest, read again once ``sync_interval_s`` has passed."""
        now = time.monotonic()
        with self._lock:
            hit = self._manifests.get(catalog_id)
        if hit is not None and now - hit[0] < self.sync_interval_s:
            return hit[1]
        manifest = self.repository.get_manifest(catalog_id)  # type: ignore[attr-defined]
        with self._lock:
            if self.max_sets > 0:
                self._manifests[catalog_id] = (now, manifest)
        return manifest

    def get(self, catalog_id: str, check: Callable[[object], None] | None = None) -> ExampleLabeler:
        """The label set's labeler. ``check(manifest)`` runs first (e.g. ownership: raise to
        refuse). Raises NotFound (no such catalog) or BadInput (a label without readable
        examples, a single example in all)."""
        manifest = self.manifest(catalog_id)
        if check is not None:
            check(manifest)
        version = manifest.version  # type: ignore[attr-defined]
        with self._lock:
            hit = self._fitted.get(catalog_id)  # now the most recently used
            if hit is not None and hit[0] == version:
                return hit[1]
        labeler = ExampleLabeler.fit(self.embedder, read_label_catalog(self.repository, catalog_id))
        with self._lock:
            if self.max_sets > 0:
                self._fitted[catalog_id] = (version, labeler)  # the least recently used goes
        return labeler

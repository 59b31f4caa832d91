"""Fitted label sets kept per worker, for live requests (``labels=<label set>`` on detect).

Fitting a label set embeds all its example photos; a worker keeps the fitted `ExampleLabeler`
of the label sets it has served (least recently used dropped beyond ``max_sets``) and refits one
when its catalog's manifest version has changed, so a label added through any worker is seen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from embedding.embedder import Embedder
from labels.examples import ExampleLabeler
from labels.labelset import read_label_catalog


class LabelerCache:
    """Label set (catalog) id -> fitted `ExampleLabeler`, refitted on a new manifest version."""

    def __init__(self, repository: object, embedder: Embedder, max_sets: int = 16) -> None:
        self.repository = repository  # a catalog.repository.CatalogRepository
        self.embedder = embedder
        self.max_sets = max_sets
        self._fitted: OrderedDict[str, tuple[int, ExampleLabeler]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, catalog_id: str) -> ExampleLabeler:
        """The label set's labeler. Raises NotFound (no such catalog) or BadInput (a label
        without readable examples, a single example in all)."""
        version = self.repository.get_manifest(catalog_id).version  # type: ignore[attr-defined]
        with self._lock:
            hit = self._fitted.get(catalog_id)
            if hit is not None and hit[0] == version:
                self._fitted.move_to_end(catalog_id)
                return hit[1]
        labeler = ExampleLabeler.fit(self.embedder, read_label_catalog(self.repository, catalog_id))
        with self._lock:
            self._fitted[catalog_id] = (version, labeler)
            self._fitted.move_to_end(catalog_id)
            while len(self._fitted) > self.max_sets:
                self._fitted.popitem(last=False)
        return labeler

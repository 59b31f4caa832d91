"""What the matcher needs of a catalog: its vector index and its cached keypoints.

A `CatalogView` is a worker's in-memory cache of one catalog (the store stays the source of
truth). It holds the `VectorIndex` and loads the catalog side's keypoints on demand through a
loader callback, keeping at most ``cache_size`` of them in an LRU, so memory stays bounded as
catalogs grow while hot items are never recomputed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from cachetools import LRUCache

from core.settings import default_of
from matching.calibration.record import CatalogCalibration
from matching.features import LocalFeatures
from matching.index import CatalogIndex, VectorIndex

FeatureLoader = Callable[[str], LocalFeatures]


class FeatureCache:
    """A thread-safe LRU (`cachetools.LRUCache`) of catalog keypoints, keyed by image id;
    ``size`` <= 0 keeps none."""

    def __init__(self, loader: FeatureLoader, size: int = default_of("keypoint_cache")) -> None:
        self._loader = loader
        self._size = size
        self._items: LRUCache[str, LocalFeatures] = LRUCache(maxsize=max(size, 0))
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, image_id: str) -> LocalFeatures:
        """Keypoints of one catalog image, loaded once and kept while recently used."""
        with self._lock:
            found = self._items.get(image_id)  # a hit becomes the most recently used
            if found is not None:
                self.hits += 1
                return found
        features = self._loader(image_id)
        with self._lock:
            self.misses += 1
            if self._size > 0:
                self._items[image_id] = features  # the least recently used goes at the cap
        return features

    def put(self, image_id: str, features: LocalFeatures) -> None:
        """Insert features computed elsewhere (e.g. just extracted when indexing)."""
        if self._size <= 0:
            return
        with self._lock:
            self._items[image_id] = features

    def discard(self, image_id: str) -> None:
        """Forget one image (it was removed from the catalog)."""
        with self._lock:
            self._items.pop(image_id, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class CatalogView:
    """One catalog as the matcher sees it.

    Attributes:
        catalog_id: the catalog's id.
        kind: ``"products"`` or ``"animals"``.
        index: the item-level vector index (`VectorIndex` in memory, or a handle on the
            catalog's vectors in Milvus); its image ids name catalog images.
        features: LRU of the catalog images' keypoints.
        version: the manifest version this view reflects.
        embedder: fingerprint of the embedder that made the vectors.
        own_calibration: the catalog's stored calibration (`matching.calibration.record`),
            or None; used only while it matches ``content_digest`` (`Pipeline.calibration_for`).
        content_digest: `catalog.manifest.Manifest.content_digest` of the version it reflects.
    """

    catalog_id: str
    kind: str
    index: CatalogIndex
    features: FeatureCache
    version: int = 0
    embedder: str | None = None
    images_of: dict[str, list[str]] = field(default_factory=dict)  # item id -> image ids
    own_calibration: CatalogCalibration | None = None
    content_digest: str = ""
    #: image id -> int64 (4,) xyxy box of its main object (absent: the whole image); local
    #: ranking counts keypoint matches outside it for less
    boxes: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(
        cls,
        catalog_id: str,
        kind: str,
        dim: int,
        loader: FeatureLoader,
        *,
        cache_size: int = default_of("keypoint_cache"),
        embedder: str | None = None,
        index: CatalogIndex | None = None,
    ) -> CatalogView:
        """A view with no image yet (version 0); `add_image` fills it.

        Args:
            dim: the vector length of the kind's embedder.
            loader: image id -> its keypoints (read when the LRU misses).
            cache_size: keypoint LRU size (0: keep none, ``loader`` is memory already).
            index: the index to fill (default: an empty in-memory `VectorIndex` of ``dim``).
        """
        return cls(
            catalog_id=catalog_id,
            kind=kind,
            index=index if index is not None else VectorIndex(dim),
            features=FeatureCache(loader, cache_size),
            embedder=embedder,
        )

    def add_image(
        self,
        item_id: str,
        image_id: str,
        vectors: np.ndarray,
        tags: Sequence[str],
        box: np.ndarray | None = None,
    ) -> None:
        """Index one catalog image's vectors float32 (V, D), vector ids ``image_id + tag``,
        and remember its main object's ``box`` (xyxy; None: the whole image)."""
        self.index.add(vectors, [item_id] * len(tags), [image_id + tag for tag in tags])
        if box is not None:
            self.boxes[image_id] = np.asarray(box, np.int64).reshape(4)
        else:
            self.boxes.pop(image_id, None)

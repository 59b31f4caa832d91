"""A worker's in-memory views of catalogs, kept in step with the store.

The store is the source of truth. A worker keeps, per catalog, a `CatalogView` (vector index,
keypoint LRU) and the manifest version it reflects. Before a catalog is used, the view is
checked against the store's manifest when its last check is older than
``SIGHTING_SYNC_INTERVAL_S``; a newer version is applied incrementally (new images' vectors
are read from their stored blobs, removed images leave the index), or, when the catalog was
re-indexed with other models (its fingerprints changed), the view is built anew. So a
change made through one worker (or host) is matched by every other within that interval, and
at once by the worker that made it (it invalidates its own view).

With ``SIGHTING_INDEX_BACKEND=milvus`` the view's index is a handle on the catalog's vectors
in Milvus, shared by every worker: applying a newer manifest syncs the engine with it
(`catalog.vector_sync`, idempotent), the writer does so before it answers, and a worker whose
view is fresh still asks the engine (one call) whether a newer version was synced, so the next
search on any worker finds an image answered 201. A sync that fails (engine away) leaves the
view on its old manifest and is tried again on the next request: the store keeps the upload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

from catalog.manifest import Manifest
from catalog.repository import CatalogRepository, Fingerprints
from core.errors import IndexUnavailable, NotFound
from core.settings import default_of
from matching.catalog_view import CatalogView
from matching.features import LocalFeatures
from matching.index import IndexConfig, default_index_config, new_index
from matching.pipeline import CROP_TAG, Pipeline
from matching.references import EMBEDDING, KEYPOINTS, read_box, read_vectors

log = logging.getLogger(__name__)


def model_fingerprints(pipeline: Pipeline, kind: str) -> Fingerprints:
    """The fingerprints of the models that describe a ``kind`` catalog's images."""
    return Fingerprints(
        embedder=pipeline.embedder_for(kind).fingerprint,
        verifier=pipeline.verifier.fingerprint if pipeline.verifier else None,
    )


@dataclass
class _Entry:
    manifest: Manifest
    view: CatalogView
    checked: float
    lock: threading.Lock
    keypoint_keys: dict[str, str]  # image id -> store key of its keypoints


class CatalogCache:
    """Views of the catalogs this worker has served, at most ``max_catalogs`` of them (the
    least recently used is dropped: a `cachetools.LRUCache`)."""

    def __init__(
        self,
        repository: CatalogRepository,
        dim_of: Callable[[str], int],
        *,
        sync_interval_s: float = default_of("sync_interval_s"),
        keypoint_cache: int = default_of("keypoint_cache"),
        max_catalogs: int = 64,
        index: IndexConfig | None = None,
    ) -> None:
        """``index``: the index backend (None: the one the settings name)."""
        self.repository = repository
        self.index_config = index or default_index_config()
        self.shared_index = self.index_config.backend == "milvus"
        self.dim_of = dim_of  # catalog kind -> vector dimension of its embedder
        self.sync_interval_s = sync_interval_s
        self.keypoint_cache = keypoint_cache
        self.max_catalogs = max_catalogs
        self._entries: LRUCache[str, _Entry] = LRUCache(maxsize=max(max_catalogs, 0))
        self._lock = threading.Lock()

    def get(
        self, catalog_id: str, check: Callable[[Manifest], None] | None = None
    ) -> tuple[Manifest, CatalogView]:
        """The catalog's current manifest and an up-to-date view.

        The store is read only when the view's last check is older than ``sync_interval_s``
        (or after `refresh`); otherwise the cached manifest answers.

        Args:
            catalog_id: the catalog.
            check: called with the manifest before it is used (the cached one, or the one
                just read from the store *before* any view is built or updated from it); its
                exception (e.g. 404 for another tenant, 409 for another embedder) propagates
                and leaves the cache as it was.

        Raises:
            NotFound: the catalog does not exist (any cached view is dropped).
        """
        with self._lock:
            entry = self._entries.get(catalog_id)  # now the most recently used
        now = time.monotonic()
        fresh = entry is not None and now - entry.checked < self.sync_interval_s
        engine_behind = False
        if entry is not None and self.shared_index and entry.manifest.version > 0:
            ahead, engine_behind = self._engine_state(entry)
            fresh = fresh and not ahead and not engine_behind
        if fresh:
            if check is not None:
                check(entry.manifest)
            return entry.manifest, entry.view
        try:
            manifest = self.repository.get_manifest(catalog_id)
        except NotFound:
            self._forget(catalog_id)
            raise
        except Exception:
            self.invalidate(catalog_id)
            raise
        if check is not None:
            check(manifest)  # before another model's vectors could be read into a view
        if entry is None or (
            entry.manifest.version > 0
            and (entry.manifest.embedder_fingerprint, entry.manifest.verifier_fingerprint)
            != (manifest.embedder_fingerprint, manifest.verifier_fingerprint)
        ):  # new, or re-indexed with other models: every vector and keypoint file changed
            entry = self._build(manifest)
        with entry.lock:
            if manifest.version != entry.manifest.version or engine_behind:
                self._apply(entry, manifest)
            entry.checked = time.monotonic()
        return entry.manifest, entry.view

    def invalidate(self, catalog_id: str) -> None:
        """Forget a catalog's view; the next `get` reads the store.

        With Milvus, a catalog the store no longer has (deleted) also leaves the engine.
        """
        with self._lock:
            self._entries.pop(catalog_id, None)
        if self.shared_index:
            try:
                self.repository.get_manifest(catalog_id)
            except NotFound:
                self._forget(catalog_id)
            except Exception:  # the store is away: the rows stay until reindex --all
                log.warning("catalog %s: could not check the store", catalog_id)

    def refresh(self, catalog_id: str) -> None:
        """Make the next `get` compare with the store at once (after this worker wrote).

        With Milvus the engine is synced now, so that every worker's next search sees the
        change; if the engine is away the change stays in the store and is synced by the
        next request that reaches the engine.
        """
        with self._lock:
            entry = self._entries.get(catalog_id)
            if entry is not None:
                entry.checked = float("-inf")
        if self.shared_index:
            try:
                self.get(catalog_id)
            except IndexUnavailable as exc:
                log.warning("catalog %s kept in the store, not yet in Milvus: %s", catalog_id, exc)

    def _engine_state(self, entry: _Entry) -> tuple[bool, bool]:
        """With Milvus: (another worker synced a newer version than this view's, the engine
        holds less than this view's version: it lost data or a sync failed), in one call."""
        index = entry.view.index
        marker = index.engine.synced(entry.manifest.catalog_id)  # type: ignore[attr-defined]
        if marker is None or marker[0] != index.collection:  # type: ignore[attr-defined]
            return False, True
        return marker[1] > entry.manifest.version, marker[1] < entry.manifest.version

    def _forget(self, catalog_id: str) -> None:
        """Drop a deleted catalog's view (and, with Milvus, its vectors)."""
        with self._lock:
            self._entries.pop(catalog_id, None)
        if self.shared_index:
            from matching.milvus_index import engine_for

            try:
                engine_for(self.index_config).forget(catalog_id)
            except IndexUnavailable as exc:
                log.warning("catalog %s deleted; its Milvus rows stay for now: %s", catalog_id, exc)

    def _build(self, manifest: Manifest) -> _Entry:
        repository = self.repository
        keys: dict[str, str] = {}

        def load_keypoints(image_id: str) -> LocalFeatures:
            if image_id not in keys:
                raise NotFound(f"catalog image {image_id!r} has no stored keypoints")
            return LocalFeatures.from_bytes(repository.get_feature(keys[image_id]))

        view = CatalogView.empty(
            manifest.catalog_id,
            manifest.kind,
            self.dim_of(manifest.kind),
            load_keypoints,
            cache_size=self.keypoint_cache,
            embedder=manifest.embedder_fingerprint,
            index=new_index(
                self.index_config,
                self.dim_of(manifest.kind),
                catalog_id=manifest.catalog_id,
                tenant=manifest.owner,
                embedder=manifest.embedder_fingerprint,
            ),
        )
        empty = Manifest(
            manifest.catalog_id, manifest.name, manifest.kind, manifest.owner, version=0
        )
        entry = _Entry(empty, view, float("-inf"), threading.Lock(), keys)
        if self.max_catalogs > 0:
            with self._lock:
                self._entries[manifest.catalog_id] = entry  # the least recently used goes
        return entry

    def _apply(self, entry: _Entry, manifest: Manifest) -> None:
        """Bring ``entry`` from its manifest to ``manifest`` (adds and removals)."""
        view = entry.view
        keys = entry.keypoint_keys
        old, new = _image_states(entry.manifest), _image_states(manifest)
        if self.shared_index:  # the engine holds the vectors: sync it, no vector read here
            from catalog.vector_sync import image_states, sync_catalog

            sync_catalog(view.index, manifest, self.repository.get_feature)  # type: ignore[arg-type]
            view.index.live = frozenset(image_states(manifest))  # type: ignore[attr-defined]
            keys.clear()
            keys.update(
                (image_id, record.feature_keys[KEYPOINTS])
                for item in manifest.items.values()
                for image_id, record in item.images.items()
                if KEYPOINTS in record.feature_keys and EMBEDDING in record.feature_keys
            )
            for image_id in (im for im in old if new.get(im) != old[im]):
                view.features.discard(image_id)
            self._finish(entry, manifest)
            return
        # gone, moved to another item, or given other feature blobs (cached keypoints, a
        # re-index): out of the index, and back in below when still there
        removed = [im for im in old if new.get(im) != old[im]]
        if removed:
            tagged = [im + tag for im in removed for tag in ("", CROP_TAG)]
            view.index.remove_images([vid for vid in tagged if vid in view.index])
            for image_id in removed:
                view.features.discard(image_id)
                view.boxes.pop(image_id, None)
                keys.pop(image_id, None)
        for item in manifest.items.values():
            for image_id, record in item.images.items():
                if old.get(image_id) == new[image_id]:
                    continue
                blob_key = record.feature_keys.get(EMBEDDING)
                if blob_key is None:
                    continue
                blob = self.repository.get_feature(blob_key)
                vectors, tags = read_vectors(blob)
                view.add_image(item.item_id, image_id, vectors, tags, read_box(blob))
                if KEYPOINTS in record.feature_keys:
                    keys[image_id] = record.feature_keys[KEYPOINTS]
        self._finish(entry, manifest)

    def _finish(self, entry: _Entry, manifest: Manifest) -> None:
        """The view's metadata of ``manifest`` (its images, version, calibration)."""
        view, keys = entry.view, entry.keypoint_keys
        view.images_of = {
            item.item_id: [im for im in item.images if im in keys]
            for item in manifest.items.values()
        }
        view.version = manifest.version
        view.embedder = manifest.embedder_fingerprint
        view.content_digest = manifest.content_digest()  # a stale calibration is not used
        if manifest.calibration != entry.manifest.calibration or entry.manifest.version == 0:
            from catalog.calibration import stored_calibration

            view.own_calibration = stored_calibration(self.repository, manifest)
        entry.manifest = manifest


def _image_states(manifest: Manifest) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """Image id -> (its item, its feature blobs' keys): what the view holds of each image."""
    return {
        image_id: (item.item_id, tuple(sorted(record.feature_keys.items())))
        for item in manifest.items.values()
        for image_id, record in item.images.items()
    }

"""Keep a catalog's vectors in Milvus in step with the store, the source of truth.

`sync_catalog` makes the engine hold exactly the vectors the manifest names: it reads the
catalog's rows from the engine (ids, items and blob keys: no vectors), deletes those of images
gone, moved to another item or re-described, and inserts the missing ones from their stored
embedding blobs. It is idempotent (rows are upserted by ``<catalog>/<vector id>``), so workers
that sync the same catalog at once, or one that syncs after the engine was away, all leave the
same rows. It then records the manifest version in the engine (``sighting_catalogs``), which
lets every worker see, in one call, that a catalog changed, and lets a worker skip the diff
when another already synced that version.

Workers sync a catalog when they see a newer manifest (`catalog.cache.CatalogCache`); the
writer does it before answering 201, so the next search on any worker finds the image.
`python -m catalog reindex --backend milvus` rebuilds catalogs from the store with ``force``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tqdm import tqdm

from catalog.manifest import Manifest
from core.errors import Conflict
from matching.milvus_index import MilvusIndex
from matching.references import EMBEDDING, read_vectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    """What one sync did.

    Attributes:
        version: the manifest version the engine holds now for the catalog.
        added: catalog images whose vectors were written.
        removed: catalog images whose vectors were deleted.
        skipped: the engine held this version already (nothing read or written).
    """

    version: int
    added: int = 0
    removed: int = 0
    skipped: bool = False


def image_states(manifest: Manifest) -> dict[str, tuple[str, str]]:
    """Image id -> (its item, its embedding blob key), for the images that have vectors."""
    return {
        image_id: (item.item_id, record.feature_keys[EMBEDDING])
        for item in manifest.items.values()
        for image_id, record in item.images.items()
        if EMBEDDING in record.feature_keys
    }


def sync_catalog(
    index: MilvusIndex,
    manifest: Manifest,
    read_blob: Callable[[str], bytes],
    *,
    force: bool = False,
    progress: bool = False,
) -> SyncReport:
    """Make the engine hold exactly ``manifest``'s vectors for its catalog.

    Args:
        index: the catalog's handle (its embedder should be the manifest's: it is moved if not).
        manifest: the store's manifest of the catalog.
        read_blob: store key -> bytes (`catalog.repository.CatalogRepository.get_feature`).
        force: delete every row of the catalog and write all again (a rebuild).
        progress: a tqdm bar over the images written.

    Raises:
        Conflict: the stored vectors have another dimension than the index's.
        IndexUnavailable: the engine failed (what was written stays; the next sync finishes).
        StoreUnavailable: a blob could not be read.
    """
    engine = index.engine
    catalog_id = manifest.catalog_id
    if manifest.embedder_fingerprint and index.embedder != manifest.embedder_fingerprint:
        index.rebind(manifest.embedder_fingerprint)
    marker = engine.synced(catalog_id)
    if marker is not None and marker[0] != index.collection:  # re-indexed: leave the old one
        engine.delete_catalog_rows(marker[0], catalog_id)
        marker = None
    if not force and marker is not None and marker[1] >= manifest.version:
        return SyncReport(version=marker[1], skipped=True)  # this version (or newer) is there
    want = image_states(manifest)
    if force:
        index.clear()
        have: dict[str, set[tuple[str, str]]] = {}
    else:
        have = {}
        for row in index.rows(["image", "item", "blob"]):
            have.setdefault(row["image"], set()).add((row["item"], row["blob"]))
    stale = [im for im, states in have.items() if states != {want.get(im)}]
    if stale:
        index.remove_catalog_images(stale)
    todo = [im for im in want if have.get(im) != {want[im]}]
    for image_id in tqdm(todo, desc=f"indexing {catalog_id}", unit="img", disable=not progress):
        item_id, key = want[image_id]
        vectors, tags = read_vectors(read_blob(key))
        if vectors.ndim != 2 or vectors.shape[1] != index.dim:
            raise Conflict(
                f"catalog {catalog_id!r} holds {vectors.shape[-1]}-d vectors, this service's "
                f"model makes {index.dim}-d ones: re-index the catalog or choose the same model",
                details={"catalog_id": catalog_id, "dim": int(vectors.shape[-1])},
            )
        index.add(
            vectors,
            [item_id] * len(tags),
            [image_id + tag for tag in tags],
            images=[image_id] * len(tags),
            blob=key,
            replace=True,
        )
    if len(todo) >= 100 or force:
        engine.flush(index.collection)
    engine.mark_synced(catalog_id, index.collection, manifest.version)
    if stale or todo:
        log.info(
            "catalog %s synced to Milvus at version %d: +%d -%d images",
            catalog_id,
            manifest.version,
            len(todo),
            len(stale),
        )
    return SyncReport(version=manifest.version, added=len(todo), removed=len(stale))

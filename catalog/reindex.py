"""Re-index a catalog with the models this service runs now.

A catalog remembers the models that described its images (its fingerprints); a service
running other ones (a new embedding head, mirror averaging, another verifier) answers 409 for
it. Re-indexing reads every stored image, describes it again and swaps all features and the
fingerprints in one manifest write (`CatalogRepository.replace_features`): until that write
the catalog stays whole on its old models, after it every worker rebuilds its view within
``SIGHTING_SYNC_INTERVAL_S``. Operators run it as ``python -m catalog reindex``.

`reindex_vectors` is the other kind of re-index: with ``--backend milvus`` no model runs, the
catalog's stored vectors are written again into the vector engine (a move to Milvus, or a
rebuild after the engine lost data).
"""

from __future__ import annotations

import logging
import time

from tqdm import tqdm

from catalog.cache import model_fingerprints
from catalog.manifest import Manifest
from catalog.repository import CatalogRepository
from catalog.vector_sync import SyncReport
from core.errors import BadInput, Conflict, NotFound
from core.images import decode_image
from matching.index import IndexConfig
from matching.pipeline import Pipeline
from matching.references import read_vectors, to_blobs

log = logging.getLogger(__name__)


def reindex_catalog(
    repository: CatalogRepository,
    pipeline: Pipeline,
    catalog_id: str,
    *,
    progress: bool = True,
    attempts: int = 3,
    grace_s: float = 0.0,
) -> Manifest:
    """Describe every image of the catalog with ``pipeline`` and swap in the new features.

    Images added while it runs are described too (up to ``attempts`` rounds); images removed
    meanwhile are skipped. The old feature blobs are deleted ``grace_s`` seconds after the
    swap (workers read them until they sync: give them ``SIGHTING_SYNC_INTERVAL_S``).

    Returns:
        The re-indexed manifest (its fingerprints are ``pipeline``'s for the catalog's kind).

    Raises:
        NotFound: no such catalog.
        Conflict: the catalog kept gaining images for ``attempts`` rounds.
        StoreUnavailable: the store failed (nothing changed; run it again).
    """
    manifest = repository.get_manifest(catalog_id)
    fingerprints = model_fingerprints(pipeline, manifest.kind)
    features: dict[str, dict[str, bytes]] = {}
    for _ in range(attempts):
        todo = [
            record
            for item in manifest.items.values()
            for record in item.images.values()
            if record.image_id not in features
        ]
        bar = tqdm(todo, desc=f"re-indexing {catalog_id}", unit="img", disable=not progress)
        for record in bar:
            try:
                data = repository.store.get(record.key)
            except NotFound:  # removed meanwhile
                continue
            try:
                pixels = decode_image(data)
            except BadInput as exc:
                raise BadInput(f"stored image {record.key} does not decode: {exc.message}") from exc
            features[record.image_id] = to_blobs(pipeline.describe_reference(pixels, manifest.kind))
        try:
            manifest, old_blobs = repository.replace_features(catalog_id, features, fingerprints)
        except Conflict as exc:
            if "missing" not in exc.details:
                raise
            log.info("catalog %s gained images meanwhile: describing them too", catalog_id)
            manifest = repository.get_manifest(catalog_id)
            continue
        log.info(
            "catalog %s re-indexed: %d images, embedder %s, verifier %s",
            catalog_id,
            len(features),
            fingerprints.embedder,
            fingerprints.verifier,
        )
        if old_blobs:
            time.sleep(grace_s)  # workers still on the old manifest may read the old blobs
            repository.discard_unreferenced(catalog_id, old_blobs)
        return manifest
    raise Conflict(
        f"catalog {catalog_id!r} kept gaining images during the re-index; run it again",
        details={"catalog_id": catalog_id},
    )


def reindex_vectors(
    repository: CatalogRepository,
    config: IndexConfig,
    catalog_id: str,
    *,
    progress: bool = True,
) -> SyncReport:
    """Rebuild one catalog's vectors in the vector engine from the store (no model runs).

    Every row of the catalog is deleted and written again from its stored embedding blobs:
    what ``python -m catalog reindex --backend milvus`` does to move catalogs to Milvus, or to
    repair the engine after it lost data.

    Raises:
        NotFound: no such catalog.
        IndexUnavailable: the engine failed (run it again: it is idempotent).
        Conflict: the engine holds this embedder's vectors with another dimension.
    """
    from catalog.vector_sync import image_states, sync_catalog
    from matching.milvus_index import MilvusIndex, engine_for

    if config.backend != "milvus":
        raise BadInput(f"reindex of vectors needs the milvus backend, not {config.backend!r}")
    manifest = repository.get_manifest(catalog_id)
    engine = engine_for(config)
    states = image_states(manifest)
    if not states:  # nothing described yet: only forget what the engine may hold
        engine.forget(catalog_id)
        return SyncReport(version=manifest.version)
    first_key = next(iter(states.values()))[1]
    dim = int(read_vectors(repository.get_feature(first_key))[0].shape[1])
    index = MilvusIndex(
        engine, catalog_id, dim, tenant=manifest.owner, embedder=manifest.embedder_fingerprint
    )
    return sync_catalog(index, manifest, repository.get_feature, force=True, progress=progress)

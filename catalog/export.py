"""A catalog of the store written out in the data layout, to train an embedder on it.

    python -m catalog export CATALOG_ID DIR
    python -m embedding.train DIR --out my-shop.head --holdout-identities 0.2

Each item's first image (the earliest added) goes to ``DIR/catalog/<item>/``, its other
images to ``DIR/queries/<item>/``: `embedding.train` trains on both and validates on the
query photos of the items it holds out, so items need two or more photos for validation.
"""

from __future__ import annotations

from pathlib import Path

from catalog.repository import CatalogRepository
from core.errors import BadInput


def export_catalog(repository: CatalogRepository, catalog_id: str, folder: Path) -> dict[str, int]:
    """Write the catalog's images under ``folder`` in the data layout.

    Returns:
        ``{"items", "catalog", "queries"}``: items and photos written to each part.

    Raises:
        NotFound: no such catalog.
        BadInput: ``folder`` already holds a ``catalog/`` or ``queries/`` folder.
        StoreUnavailable: the store failed.
    """
    for part in ("catalog", "queries"):
        if (folder / part).exists():
            raise BadInput(f"{folder / part} exists: export into an empty folder")
    manifest = repository.get_manifest(catalog_id)
    counts = {"items": 0, "catalog": 0, "queries": 0}
    for item in manifest.items.values():
        # earliest added first; images added together keep the order they were sent in
        records = sorted(item.images.values(), key=lambda r: r.added_at)  # sorted is stable
        for index, record in enumerate(records):
            part = "catalog" if index == 0 else "queries"
            ext = record.key.rsplit(".", 1)[-1]
            out = folder / part / item.item_id / f"{record.image_id}.{ext}"
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("wb") as f:
                repository.store.copy_to(record.key, f)
            counts[part] += 1
        counts["items"] += bool(records)
    return counts

"""Reading a photo set in the data layout (``catalog/``, ``queries/<item>/``, ``_none``).

The benchmarks measure on it and `embedding.trainset` trains on it (see ../shared/data/README.md).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInput
from core.images import list_images

NONE = "_none"


@dataclass(frozen=True)
class Query:
    """One query photo and the catalog item it shows (``None`` for open-set photos)."""

    path: Path
    item_id: str | None


def load_queries(dataset: Path) -> list[Query]:
    """Every query photo of a set, sorted by path."""
    root = Path(dataset) / "queries"
    if not root.is_dir():
        raise BadInput(f"{dataset} has no queries/ folder")
    queries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        item = None if folder.name == NONE else folder.name
        queries.extend(Query(path, item) for path in list_images(folder))
    return queries


def load_groups(dataset: Path) -> dict[str, str]:
    """Item id -> group from ``classes.csv`` (column ``group``), or {} when there is none."""
    path = Path(dataset) / "classes.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {row["item_id"]: row.get("group", "") for row in csv.DictReader(fh)}


def sample_queries(queries: list[Query], limit: int | None, seed: int = 0) -> list[Query]:
    """A fixed, seeded random sample, stratified over catalog-item and open-set queries."""
    if limit is None or limit >= len(queries):
        return list(queries)
    known = [q for q in queries if q.item_id is not None]
    unknown = [q for q in queries if q.item_id is None]
    n_unknown = round(limit * len(unknown) / len(queries))
    rng = random.Random(seed)
    picked = rng.sample(known, limit - n_unknown) + rng.sample(unknown, n_unknown)
    return sorted(picked, key=lambda q: str(q.path))

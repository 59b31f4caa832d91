"""Training identities of a set in the data layout, and the honest validation splits.

``SET/catalog/<item>/`` and ``SET/queries/<item>/`` photos are the identities' photos;
``queries/_none`` is never read. Splits: held-out identities (none of their photos is
trained on) and the benchmark's own query sample (those photos are not trained on).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.dataset import NONE, load_queries, sample_queries
from core.errors import BadInput
from core.images import list_images


@dataclass(frozen=True)
class Photo:
    """One photo of one identity."""

    path: Path
    item: str
    role: Literal["catalog", "query"]


@dataclass(frozen=True)
class TrainSet:
    """Every usable photo of a set, by identity."""

    root: Path
    items: tuple[str, ...]  # sorted catalog items that have at least one catalog photo
    photos: tuple[Photo, ...]
    notes: tuple[str, ...] = field(default=())  # skipped folders and similar, for the user


def scan_set(root: Path) -> TrainSet:
    """List the catalog items and their photos (catalog + queries, never ``_none``).

    Items whose catalog folder is empty are skipped (they cannot be searched for); query
    folders of items not in the catalog are skipped too. Each skip adds a note.

    Raises:
        BadInput: no ``catalog/`` folder.
    """
    root = Path(root)
    catalog = root / "catalog"
    if not catalog.is_dir():
        raise BadInput(f"{root} has no catalog/ folder (expected SET/catalog/<item>/<image>)")
    notes: list[str] = []
    items: list[str] = []
    photos: list[Photo] = []
    for folder in sorted(p for p in catalog.iterdir() if p.is_dir()):
        images = list_images(folder)
        if not images:
            notes.append(f"catalog/{folder.name} has no images: item skipped")
            continue
        items.append(folder.name)
        photos.extend(Photo(p, folder.name, "catalog") for p in images)
    queries = root / "queries"
    if queries.is_dir():
        known = set(items)
        for folder in sorted(p for p in queries.iterdir() if p.is_dir()):
            if folder.name == NONE:
                continue  # open-set photos: never trained on
            if folder.name not in known:
                notes.append(f"queries/{folder.name} has no catalog item: skipped")
                continue
            photos.extend(Photo(p, folder.name, "query") for p in list_images(folder))
    return TrainSet(root, tuple(items), tuple(photos), tuple(notes))


def holdout_identities(items: tuple[str, ...], fraction: float, seed: int) -> frozenset[str]:
    """A seeded random ``fraction`` of the items (at least one when ``fraction > 0``)."""
    if fraction <= 0:
        return frozenset()
    n = min(len(items), max(1, round(fraction * len(items))))
    return frozenset(random.Random(seed).sample(sorted(items), n))


def benchmark_photos(root: Path, limit: int) -> frozenset[Path]:
    """The query photos of the benchmark sample (``sample_queries(..., limit, seed=0)``)."""
    if limit <= 0 or not (Path(root) / "queries").is_dir():
        return frozenset()
    return frozenset(q.path.resolve() for q in sample_queries(load_queries(root), limit, seed=0))

"""Catching one thing entered twice: which existing items a new item (or new image) may be.

When an item is created or gets images, each new image is matched against the catalog as it
was before the upload (its own item left out), by the same search, verification and score as
any query (`possible_duplicates`). Items whose best score reaches ``min_score`` (or that are
verified) are named in the 201 answer and recorded (`DuplicateLog`) so that the catalog's
look-alike list shows them until one of the two items is deleted.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from catalog.manifest import Manifest, utc_now
from catalog.repository import SIGHTINGS_FOLDER, catalog_prefix
from catalog.store import Store
from core.errors import Conflict, NotFound
from matching.catalog_view import CatalogView
from matching.pipeline import Pipeline, PipelineConfig, Reference

#: Most look-alike pairs a catalog's log keeps (the newest).
MAX_LOGGED = 200


@dataclass(frozen=True)
class PossibleDuplicate:
    """An existing item a new image may show (the best of the new images for that item)."""

    item_id: str  # the existing item
    score: float  # calibrated probability that it is the same item
    similarity: float
    inliers: int
    verified: bool
    image_index: int  # which of the uploaded images (0-based)


def possible_duplicates(
    pipeline: Pipeline,
    view: CatalogView | None,
    item_id: str | None,
    images: Sequence[np.ndarray],
    refs: Sequence[Reference],
    *,
    min_score: float,
    top_k: int = 3,
) -> list[PossibleDuplicate]:
    """Existing items (other than ``item_id``) the uploaded images may show, best first.

    Args:
        view: the catalog before the upload (None or empty: nothing to compare with).
        images: the uploaded images, uint8 (H, W, 3) RGB; ``refs`` their descriptions.
        min_score: the lowest score named (a verified match is named whatever its score).
    """
    if view is None or len(view.index) == 0:
        return []
    config = PipelineConfig(top_k=top_k + 1, whole_frame=True, verify_crops=2)
    best: dict[str, PossibleDuplicate] = {}
    for index, (image, ref) in enumerate(zip(images, refs, strict=True)):
        x1, y1, x2, y2 = (int(v) for v in ref.box)
        crops = [image, image[y1:y2, x1:x2]][: len(ref.vectors)]
        for matches in pipeline.match_vectors(ref.vectors, crops, view, config):
            for m in matches:
                if m.item_id == item_id or not (m.verified or m.score >= min_score):
                    continue
                found = best.get(m.item_id)
                if found is None or (m.score, m.similarity) > (found.score, found.similarity):
                    best[m.item_id] = PossibleDuplicate(
                        m.item_id, float(m.score), float(m.similarity), m.inliers, m.verified, index
                    )
    return sorted(best.values(), key=lambda d: (-d.score, -d.similarity))[:top_k]


def duplicate_to_dict(d: PossibleDuplicate) -> dict:
    """One possible duplicate as the API's JSON."""
    return {
        "item_id": d.item_id,
        "score": round(d.score, 4),
        "similarity": round(d.similarity, 4),
        "inliers": d.inliers,
        "verified": d.verified,
        "image_index": d.image_index,
    }


def duplicates_key(catalog_id: str) -> str:
    """``catalogs/<cid>/sightings/duplicates.json``."""
    return f"{catalog_prefix(catalog_id)}{SIGHTINGS_FOLDER}/duplicates.json"


class DuplicateLog:
    """The catalog's recorded possible duplicates (one JSON document, compare-and-swap)."""

    def __init__(self, store: Store, max_retries: int = 32) -> None:
        self.store = store
        self.max_retries = max_retries

    def record(self, catalog_id: str, item_id: str, found: Sequence[PossibleDuplicate]) -> None:
        """Add ``item_id``'s possible duplicates (a pair logged before is updated)."""
        if not found:
            return
        key = duplicates_key(catalog_id)
        for attempt in range(self.max_retries):
            try:
                data, etag = self.store.get_with_etag(key)
                pairs = json.loads(data)["pairs"]
            except NotFound:
                pairs, etag = [], None
            new = {frozenset((p["item"], p["looks_like"])): p for p in pairs if isinstance(p, dict)}
            for d in found:
                new[frozenset((item_id, d.item_id))] = {
                    "item": item_id,
                    "looks_like": d.item_id,
                    "score": round(d.score, 4),
                    "similarity": round(d.similarity, 4),
                    "inliers": d.inliers,
                    "verified": d.verified,
                    "source": "upload",
                    "at": utc_now(),
                }
            body = sorted(new.values(), key=lambda p: p["at"])[-MAX_LOGGED:]
            try:
                self.store.put_if(key, json.dumps({"pairs": body}).encode(), expected_etag=etag)
                return
            except Conflict:
                time.sleep(random.uniform(0.0, min(0.005 * 2**attempt, 0.5)))
        raise Conflict(f"catalog {catalog_id!r}: its duplicate log kept changing")

    def pairs(self, manifest: Manifest) -> list[dict]:
        """The logged pairs whose two items both still exist, highest score first."""
        try:
            raw = json.loads(self.store.get(duplicates_key(manifest.catalog_id)))["pairs"]
        except (NotFound, ValueError, KeyError, TypeError):
            return []
        alive = [
            p
            for p in raw
            if isinstance(p, dict)
            and p.get("item") in manifest.items
            and p.get("looks_like") in manifest.items
        ]
        return sorted(alive, key=lambda p: -float(p.get("score", 0.0)))

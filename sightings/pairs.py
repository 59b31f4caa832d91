"""What people's reviews teach the catalog's calibration: labelled real query photos.

Each reviewed sighting is a real query of the catalog whose answer is now known:

* ``confirmed`` (``same``): its item is the truth. The candidate of that item is a genuine
  pair (crop vs its item); every other candidate is an impostor pair.
* ``none`` and ``new_item``: the object was not in the catalog when it was seen, so every
  candidate is an impostor pair (an open-set query).

`reviewed_pairs` turns them into the records the calibration fit reads
(`matching.calibration.pair_record.PairRecord`: ``true`` the item or None, ``crops`` the
candidates with their evidence), one per sighting: the fit scores each record's top answer,
as a person acts on it.
Sightings whose similarities another embedder made (the catalog was re-indexed since) are left
out, and so are sightings confirmed as an item deleted since, and candidates of deleted items.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from catalog.manifest import Manifest
from core.errors import NotFound, StoreUnavailable
from matching.calibration.pair_record import Candidate, PairRecord
from matching.calibration.reviews import review_pair_counts
from sightings.model import Sighting
from sightings.repository import SightingRepository


@dataclass(frozen=True)
class ReviewedPairs:
    """The reviewed sightings of a catalog as calibration records.

    Attributes:
        records: one per usable reviewed sighting (``source`` ``review``).
        genuine, impostors: pair counts (module docstring).
        sightings: reviewed sightings used.
        skipped: reviewed sightings left out (another embedder, no candidate left).
        digest: changes whenever the set of verdicts changes (a refit is due).
    """

    records: list[PairRecord] = field(default_factory=list)
    genuine: int = 0
    impostors: int = 0
    sightings: int = 0
    skipped: int = 0
    digest: str = ""


def sighting_record(s: Sighting, items: set[str] | None = None) -> PairRecord | None:
    """One reviewed sighting as a calibration record, or None (unreviewed, or no candidate
    of a current item)."""
    if s.state == "unreviewed":
        return None
    cands = [c for c in s.candidates if items is None or c.item_id in items]
    if not cands:
        return None
    truth = s.item_id if s.state == "confirmed" else None
    crop = tuple(
        Candidate(
            item_id=c.item_id,
            similarity=c.similarity,
            inliers=c.inliers,
            spread=c.spread,
            checked=c.checked,
            score=c.score,
            verified=c.verified,
        )
        for c in cands
    )
    excluded = None if truth is not None else s.item_id or f"sighting:{s.sighting_id}"
    return PairRecord(s.sighting_id, truth, (crop,), excluded=excluded, source="review")


def pairs_of(sightings: list[Sighting], manifest: Manifest) -> ReviewedPairs:
    """`ReviewedPairs` of the given sightings against the catalog as it is now."""
    items = set(manifest.items)
    records, skipped, verdicts = [], 0, []
    for s in sorted(sightings, key=lambda s: s.sighting_id):
        if s.state == "unreviewed":
            continue
        usable = s.embedder is None or s.embedder == manifest.embedder_fingerprint
        if s.state == "confirmed" and s.item_id not in items:
            usable = False  # its item was deleted since: the truth names nothing
        record = sighting_record(s, items) if usable else None
        if record is None:
            skipped += 1
            continue
        records.append(record)
        verdicts.append([s.sighting_id, s.state, s.item_id])
    genuine, impostors = review_pair_counts(records)
    digest = hashlib.sha256(json.dumps(verdicts).encode()).hexdigest()[:16] if verdicts else ""
    return ReviewedPairs(records, genuine, impostors, len(records), skipped, digest)


def reviewed_pairs(repository: SightingRepository, manifest: Manifest) -> ReviewedPairs:
    """The catalog's reviewed sightings (read from the store) as `ReviewedPairs`."""
    reviewed = repository.reviewed_ids(manifest.catalog_id)
    found = []
    for sid in sorted(reviewed):
        try:
            found.append(repository.get(manifest.catalog_id, sid))
        except (NotFound, StoreUnavailable):  # dropped meanwhile, or unreadable: left out
            continue
    return pairs_of(found, manifest)

"""Impostor pairs a person marked outside the review queue: a watch's alert resolved "not the
same" (`watches`), kept for the catalog's calibration refit beside the reviewed sightings.

One record per pair at ``catalogs/<cid>/sightings/impostors/<key>.json``, in the shape of
`sightings.pairs` records (``true`` None: the one candidate, the watched item, is an impostor
pair with the photo that was matched to it), with the embedder that made its similarity
(another model's records are left out, as for sightings). A resolution changed back removes
the record. The fit reads them with the reviewed sightings (`impostor_records`, added to
`sightings.pairs.reviewed_pairs`' records by the refit job).

Caveat: an alert keeps its best pair's evidence only, not the ranked list it came from, so
its record has one candidate (no margin over a second one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field

from catalog.manifest import Manifest
from catalog.store import Store
from core.errors import NotFound, StoreUnavailable
from matching.calibration.pair_record import Candidate, PairRecord
from sightings.repository import sightings_prefix


def _prefix(catalog_id: str) -> str:
    return f"{sightings_prefix(catalog_id)}impostors/"


def impostor_key(catalog_id: str, key: str) -> str:
    if not key.isalnum() or not key.isascii():
        raise ValueError(f"bad impostor key {key!r}")
    return f"{_prefix(catalog_id)}{key}.json"


def impostor_record(
    key: str,
    item_id: str,
    *,
    similarity: float,
    inliers: int,
    score: float,
    verified: bool,
    embedder: str | None,
) -> PairRecord:
    """One impostor pair as a calibration record (module docstring)."""
    cand = Candidate(
        item_id=item_id,
        similarity=float(similarity),
        inliers=int(inliers),
        spread=0.0,
        checked=True,
        score=float(score),
        verified=bool(verified),
    )
    return PairRecord(
        path=f"impostor:{key}",
        true=None,
        crops=((cand,),),
        excluded=f"impostor:{key}",
        source="impostor",
        embedder=embedder,
    )


def put_impostor(store: Store, catalog_id: str, key: str, record: PairRecord) -> None:
    """Keep (or replace) one impostor record (`PairRecord.to_dict`)."""
    body = json.dumps(record.to_dict(), separators=(",", ":"))
    store.put(impostor_key(catalog_id, key), body.encode())


def drop_impostor(store: Store, catalog_id: str, key: str) -> None:
    """Remove one impostor record (absent: nothing to do)."""
    with contextlib.suppress(NotFound):
        store.delete(impostor_key(catalog_id, key))


@dataclass(frozen=True)
class Impostors:
    """The catalog's usable impostor records, and a digest that changes with them."""

    records: list[PairRecord] = field(default_factory=list)
    digest: str = ""


def impostor_records(store: Store, manifest: Manifest) -> Impostors:
    """The records of current items made by the catalog's embedder, sorted by key."""
    records = []
    for key in sorted(store.list(_prefix(manifest.catalog_id))):
        try:
            record = PairRecord.from_dict(json.loads(store.get(key)))
        except (NotFound, StoreUnavailable, ValueError, KeyError, TypeError):
            continue  # gone, unreadable, or not a record
        if record.embedder is not None and record.embedder != manifest.embedder_fingerprint:
            continue
        if record.crops[0][0].item_id not in manifest.items:
            continue
        records.append(record)
    paths = [r.path for r in records]
    digest = hashlib.sha256(json.dumps(paths).encode()).hexdigest()[:16] if records else ""
    return Impostors(records, digest)

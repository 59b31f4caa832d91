"""The pair records a catalog's calibration is fitted on (`matching.calibration`), typed.

A `PairRecord` is one query scored against the catalog: the catalog's own pairs
(`matching.calibration.pairs.collect_pairs`), a reviewed sighting (`sightings.pairs`) or an
impostor pair a person marked (`sightings.impostors`). Each holds the query's crops' ranked
`Candidate` s with the evidence the score reads.

JSON only at the edge: `PairRecord.to_dict` / `PairRecord.from_dict` are the one serialiser,
in the format these records always had (a benchmark dump's records, `bench.accuracy --json`;
the side file ``own-pairs.json`` of `catalog.calibration`, keys ``records`` and ``reviewed``;
`bench.catalog_calibration --pairs`):
``{"path", "true", "crops": [[{"item_id", "similarity", "inliers", "spread", "checked",
"score", "verified", "raw_inliers"}]], "excluded" | "pair", "source", "embedder"}``.
Optional keys are written only where the record has them, so what was read is written back
as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One ranked candidate of a crop, as the score reads it.

    Attributes:
        item_id: the catalog item.
        similarity: the embedding similarity.
        inliers: the keypoint evidence the score read (an int count, or local ranking's
            weighted evidence: a float).
        spread: the inliers' coverage of the crop.
        checked: keypoints were run for it (records without the key: True).
        score: the calibrated score it had (None: not recorded).
        verified: whether it was confirmed (None: not recorded).
        raw_inliers: the plain inlier count where ``inliers`` is weighted evidence (None: not
            recorded).
    """

    item_id: str
    similarity: float
    inliers: float
    spread: float
    checked: bool = True
    score: float | None = None
    verified: bool | None = None
    raw_inliers: int | None = None

    def to_dict(self) -> dict:
        out: dict = {
            "item_id": self.item_id,
            "similarity": self.similarity,
            "inliers": self.inliers,
        }
        if self.raw_inliers is not None:
            out["raw_inliers"] = self.raw_inliers
        out |= {"spread": self.spread, "checked": self.checked}
        if self.score is not None:
            out["score"] = self.score
        if self.verified is not None:
            out["verified"] = self.verified
        return out

    @classmethod
    def from_dict(cls, body: Mapping) -> Candidate:
        return cls(
            item_id=body["item_id"],
            similarity=body["similarity"],
            inliers=body["inliers"],
            spread=body["spread"],
            checked=body.get("checked", True),
            score=body.get("score"),
            verified=body.get("verified"),
            raw_inliers=body.get("raw_inliers"),
        )


@dataclass(frozen=True)
class PairRecord:
    """One query scored against a catalog.

    Attributes:
        path: the query (a catalog image id, a sighting id, ``impostor:<key>``, a photo path).
        true: the item it shows, or None (an impostor / open-set query).
        crops: each crop's candidates, ranked.
        excluded: for an impostor query, the item (or stand-in) it was kept apart from.
        pair: for a genuine own pair, how it was made (``other_image``, ``augmented``).
        source: where a reviewed record came from (``review``, ``impostor``).
        embedder: the embedder that made its similarities (impostor records; None: unknown).
    """

    path: str
    true: str | None
    crops: tuple[tuple[Candidate, ...], ...]
    excluded: str | None = None
    pair: str | None = None
    source: str | None = None
    embedder: str | None = None

    def to_dict(self) -> dict:
        out: dict = {"path": self.path, "true": self.true}
        if self.source is not None:
            out["source"] = self.source
        # impostor records always carry the key, None when the embedder is unknown
        if self.embedder is not None or self.source == "impostor":
            out["embedder"] = self.embedder
        out["crops"] = [[c.to_dict() for c in crop] for crop in self.crops]
        if self.excluded is not None:
            out["excluded"] = self.excluded
        if self.pair is not None:
            out["pair"] = self.pair
        return out

    @classmethod
    def from_dict(cls, body: Mapping) -> PairRecord:
        return cls(
            path=body["path"],
            true=body["true"],
            crops=tuple(tuple(Candidate.from_dict(c) for c in crop) for crop in body["crops"]),
            excluded=body.get("excluded"),
            pair=body.get("pair"),
            source=body.get("source"),
            embedder=body.get("embedder"),
        )


def records_to_json(records: list[PairRecord] | tuple[PairRecord, ...]) -> list[dict]:
    """``records`` as JSON lists (`PairRecord.to_dict`)."""
    return [r.to_dict() for r in records]


def records_from_json(rows) -> list[PairRecord]:
    """JSON lists read back (`PairRecord.from_dict`)."""
    return [PairRecord.from_dict(r) for r in rows]

"""A proposal: photos a discovery job grouped as one new individual, and what a person decided.

A `Member` is one photo: a sighting of the catalog (``source`` ``sighting``, ``ref`` its id),
or a detection of a camera-trap batch's photo that matched no known individual (``source``
``trap``, ``ref`` ``<file>#<detection>``); its crop is stored (``crop_key``). A `Proposal`
holds its members, the verified pairs that join them (`Link`), and its state: ``open``,
``accepted`` (``item_id`` names the item it became), ``rejected``. Splitting moves some
members into a new open proposal (``split_from``). One JSON form for the store and the API
(`Proposal.to_dict`); no I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from core.errors import StoreUnavailable

SCHEMA = 1
STATES: tuple[str, ...] = ("open", "accepted", "rejected")
SOURCES: tuple[str, ...] = ("sighting", "trap")


@dataclass(frozen=True)
class Member:
    """One photo of a proposal (module docstring)."""

    ref: str  # sighting id, or "<file>#<detection>" of a trap batch
    source: str  # one of `SOURCES`
    crop_key: str  # store key of the crop (JPEG)
    file_name: str = ""  # the photo's file name, when known
    camera: str = ""  # the camera (trap batches), when known
    time: str = ""  # when it was taken or kept (ISO 8601), when known


@dataclass(frozen=True)
class Link:
    """A verified pair of members: refs, cosine similarity, keypoint inliers, score."""

    a: str
    b: str
    similarity: float
    inliers: int
    score: float


@dataclass(frozen=True)
class Proposal:
    """Photos proposed as one new individual (module docstring)."""

    proposal_id: str
    catalog_id: str
    tenant: str  # the catalog owner's tenant that ran the discovery
    job_id: str  # the discovery job that proposed it
    created_at: str
    members: tuple[Member, ...]
    links: tuple[Link, ...] = ()
    score: float = 0.0  # the weakest link of the group's best spanning tree
    state: str = "open"
    item_id: str | None = None  # accepted: the item it became
    decided_by: str | None = None
    decided_at: str | None = None
    split_from: str | None = None  # the proposal it was split off

    def member(self, ref: str) -> Member | None:
        """The member of this ref, or None."""
        return next((m for m in self.members if m.ref == ref), None)

    def keeping(self, refs: set[str]) -> Proposal:
        """A copy with only the members of ``refs`` and the links between them."""
        return replace(
            self,
            members=tuple(m for m in self.members if m.ref in refs),
            links=tuple(link for link in self.links if link.a in refs and link.b in refs),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["members"] = [asdict(m) for m in self.members]
        out["links"] = [asdict(link) for link in self.links]
        return out

    def to_json(self) -> bytes:
        """The stored document: `to_dict` plus a ``schema`` field."""
        return json.dumps({"schema": SCHEMA} | self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Proposal:
        """Parse `to_json`'s output.

        Raises:
            StoreUnavailable: not a proposal this code can read.
        """
        try:
            raw = json.loads(data)
            if raw.pop("schema", None) != SCHEMA:
                raise ValueError("unknown proposal schema")
            raw["members"] = tuple(Member(**m) for m in raw["members"])
            raw["links"] = tuple(Link(**link) for link in raw.get("links") or ())
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise StoreUnavailable(f"unreadable proposal document: {exc!r}") from exc

"""A sighting: one matched object Sighting kept, and what people said about it.

A `Sighting` is written when an answer is kept (``keep=true`` on detect, search, stream frames,
video jobs and camera-trap batches, or a catalog that keeps every answer): the object's crop
(and the photo it came from) is stored beside it, with its box, where it came from
(`SightingSource`), the ranked candidates as they were scored (`Candidate`, the evidence the
calibration reads), the catalog version and the time. A person then reviews it (`Review`):
``same`` (an item id), ``none`` (not in the catalog) or ``new_item`` (an item created from
the crop). The last review sets the sighting's state; earlier ones stay in its history.

This module holds the types and their one JSON form (the stored document and the API's body
are the same dict, less the store keys: `Sighting.to_dict`); no I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from core.errors import StoreUnavailable

SCHEMA = 1

State = Literal["unreviewed", "confirmed", "none", "new_item"]
Verdict = Literal["same", "none", "new_item"]
STATES: tuple[str, ...] = ("unreviewed", "confirmed", "none", "new_item")
VERDICTS: tuple[str, ...] = ("same", "none", "new_item")
#: The state a verdict leaves a sighting in.
STATE_OF: dict[str, str] = {"same": "confirmed", "none": "none", "new_item": "new_item"}
SOURCE_KINDS: tuple[str, ...] = ("detect", "search", "stream", "video", "trap", "bench")


@dataclass(frozen=True)
class Candidate:
    """One ranked candidate item as it was scored when the sighting was kept."""

    item_id: str
    image_id: str  # the catalog image that matched best
    score: float  # calibrated probability of the same item, at the time
    similarity: float  # cosine similarity of the embeddings
    inliers: int  # keypoint inliers (0: not verified)
    spread: float = 0.0  # share of the catalog image the inliers cover
    checked: bool = False  # keypoints were run for this candidate
    verified: bool = False  # score >= the threshold at the time


@dataclass(frozen=True)
class SightingSource:
    """Where a sighting comes from (every field optional but ``kind``)."""

    kind: str = "detect"  # one of `SOURCE_KINDS`
    stream_id: str | None = None
    frame_index: int | None = None
    track_id: int | None = None
    file_name: str | None = None  # the photo's or video's file name
    exif_time: str | None = None  # the photo's EXIF DateTimeOriginal, ISO 8601
    camera: str | None = None  # a camera name (trap batches: the camera folder)
    job_id: str | None = None  # the video or trap job that kept it

    @property
    def name(self) -> str:
        """The value the ``source`` filter matches: stream id, camera, file name or kind."""
        return self.stream_id or self.camera or self.file_name or self.kind


@dataclass(frozen=True)
class Review:
    """One person's verdict on a sighting."""

    verdict: str  # one of `VERDICTS`
    item_id: str | None  # the item (same, new_item); None for none
    tenant: str  # the reviewer's tenant (the API key's)
    at: str  # ISO 8601 UTC
    reference_image_id: str | None = None  # the crop became this reference image
    metadata: dict[str, Any] | None = None  # new_item: the metadata it was created with


@dataclass(frozen=True)
class Sighting:
    """One kept object (module docstring).

    Attributes:
        sighting_id: unique within the catalog (``s`` + random, or derived from a stream track).
        catalog_id: its catalog.
        tenant: who kept it (the API key's tenant); only it (or an admin) sees it.
        catalog_version: the manifest version it was matched against.
        kept_at, updated_at: ISO 8601 UTC.
        box: xyxy pixels in the source photo.
        class_name, confidence: the detector's.
        source: where it came from.
        candidates: ranked, best first, as scored then.
        crop_key, photo_key: store keys of the crop (JPEG) and of the source photo (or None).
        crop_size: (width, height) of the crop.
        calibration: ``catalog`` or ``kind_default`` (what scored it).
        embedder: the embedder fingerprint of the similarities (another model's never feed
            the catalog's calibration).
        reviews: every review, oldest first; the last one sets ``state`` and ``item_id``.
    """

    sighting_id: str
    catalog_id: str
    tenant: str
    catalog_version: int
    kept_at: str
    box: tuple[float, float, float, float]
    source: SightingSource
    candidates: tuple[Candidate, ...]
    crop_key: str
    photo_key: str | None = None
    crop_size: tuple[int, int] = (0, 0)
    class_name: str = ""
    confidence: float = 0.0
    calibration: str = "kind_default"
    embedder: str | None = None  # fingerprint of the embedder that made the similarities
    updated_at: str = ""
    reviews: tuple[Review, ...] = ()

    # --- derived --------------------------------------------------------------------
    @property
    def last_review(self) -> Review | None:
        """The review in force, or None."""
        return self.reviews[-1] if self.reviews else None

    @property
    def state(self) -> str:
        """``unreviewed`` or the state the last verdict left (`STATE_OF`)."""
        last = self.last_review
        return "unreviewed" if last is None else STATE_OF[last.verdict]

    @property
    def item_id(self) -> str | None:
        """The item a person said it is (same, new_item), else None."""
        last = self.last_review
        return None if last is None else last.item_id

    @property
    def best(self) -> Candidate | None:
        """The top candidate."""
        return self.candidates[0] if self.candidates else None

    def reviewed(self, review: Review) -> Sighting:
        """A copy with ``review`` appended (the history stays)."""
        return replace(self, reviews=(*self.reviews, review), updated_at=review.at)

    # --- serialisation (one form for the store and the API) ---------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, derived fields (state, item_id) included."""
        out = asdict(self)
        out["box"] = [round(float(v), 1) for v in self.box]
        out["crop_size"] = list(self.crop_size)
        out["candidates"] = [asdict(c) for c in self.candidates]
        out["reviews"] = [asdict(r) for r in self.reviews]
        out["state"] = self.state
        out["item_id"] = self.item_id
        return out

    def to_json(self) -> bytes:
        """The stored document: `to_dict` plus a ``schema`` field."""
        return json.dumps({"schema": SCHEMA} | self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Sighting:
        """Parse `to_json`'s output.

        Raises:
            StoreUnavailable: not a sighting this code can read.
        """
        try:
            raw = json.loads(data)
            if raw.pop("schema", None) != SCHEMA:
                raise ValueError("unknown sighting schema")
            raw.pop("state", None)
            raw.pop("item_id", None)
            raw["box"] = tuple(float(v) for v in raw["box"])
            raw["crop_size"] = tuple(int(v) for v in raw.get("crop_size") or (0, 0))
            raw["source"] = SightingSource(**raw["source"])
            raw["candidates"] = tuple(Candidate(**c) for c in raw["candidates"])
            raw["reviews"] = tuple(Review(**r) for r in raw.get("reviews") or ())
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
            raise StoreUnavailable(f"unreadable sighting document: {exc!r}") from exc


@dataclass(frozen=True)
class SightingFilter:
    """What a listing keeps (None: any)."""

    state: str | None = None  # one of `STATES`
    item_id: str | None = None  # the reviewed item, or any candidate's item when unreviewed
    source: str | None = None  # `SightingSource.name` or its kind
    since: str | None = None  # kept at or after (ISO 8601)
    until: str | None = None  # kept before (ISO 8601)

    def keeps(self, s: Sighting) -> bool:
        """Whether ``s`` passes the filter."""
        if self.state is not None and s.state != self.state:
            return False
        if self.item_id is not None:
            items = {s.item_id} if s.state != "unreviewed" else {c.item_id for c in s.candidates}
            if self.item_id not in items:
                return False
        if self.source is not None and self.source not in (s.source.name, s.source.kind):
            return False
        if self.since is not None and s.kept_at < self.since:
            return False
        return not (self.until is not None and s.kept_at >= self.until)


@dataclass(frozen=True)
class SightingPage:
    """One page of a listing, newest first."""

    sightings: list[Sighting]
    total: int  # sightings passing the filter
    offset: int
    limit: int
    counts: dict[str, int] = field(default_factory=dict)  # per state, over the catalog

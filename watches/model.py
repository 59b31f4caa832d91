"""Typed watches, alerts and delivery logs, with the one JSON serialiser of each.

A `Watch` says: tell ``webhook_url`` when an image of ``source_catalog`` (e.g. a shelter's
found dogs) matches an item of ``watched_catalog`` (the owners' lost dogs) at ``min_score`` or
above, for the source items that pass ``filters``. The two may be the same catalog (an item is
then never matched with itself). An `Alert` is one (watched item, source item) pair: its id is
derived from the pair, so the pair gives one alert however often images are added.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

from core.errors import BadInput, StoreUnavailable

DeliveryStatus = Literal["pending", "sending", "retrying", "delivered", "failed", "none"]
Resolution = Literal["reunited", "not_same"]
RESOLUTIONS: tuple[str, ...] = ("reunited", "not_same")
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Near:
    """A circle on the Earth: items whose metadata ``lat``/``lon`` lie within ``radius_km``."""

    lat: float
    lon: float
    radius_km: float

    def __post_init__(self) -> None:
        for name, lo, hi in (("lat", -90, 90), ("lon", -180, 180), ("radius_km", 0, 20040)):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise BadInput(f"filters.near.{name} must be a number")
            if not (lo <= value <= hi) or math.isnan(value):
                raise BadInput(f"filters.near.{name} must be in [{lo}, {hi}]")

    def distance_km(self, lat: float, lon: float) -> float:
        """Great-circle (haversine) distance from the centre to ``(lat, lon)``."""
        p1, p2 = math.radians(self.lat), math.radians(lat)
        dp, dl = p2 - p1, math.radians(lon - self.lon)
        a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _day(value: Any, name: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise BadInput(f"filters.{name} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


@dataclass(frozen=True)
class Filters:
    """Which source items a watch considers (all given conditions must hold).

    Attributes:
        metadata: exact values the item's metadata must have (e.g. ``{"species": "dog"}``).
        near: a circle; an item without numeric ``lat``/``lon`` metadata does not pass.
        date_from, date_to: inclusive ISO days; the item's ``date`` metadata, else the day
            its first image was added.
    """

    metadata: dict[str, Any] = field(default_factory=dict)
    near: Near | None = None
    date_from: str | None = None
    date_to: str | None = None

    @classmethod
    def from_dict(cls, raw: Any) -> Filters:
        """Parse the ``filters`` object of a watch.

        Raises:
            BadInput: not an object, unknown key, or a bad value (the message names it).
        """
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise BadInput("filters must be a JSON object")
        unknown = set(raw) - {"metadata", "near", "date_from", "date_to"}
        if unknown:
            raise BadInput(f"unknown filters {sorted(unknown)}: metadata, near, date_from, date_to")
        metadata = raw.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise BadInput("filters.metadata must be a JSON object")
        near = raw.get("near")
        if near is not None:
            if not isinstance(near, dict) or set(near) != {"lat", "lon", "radius_km"}:
                raise BadInput("filters.near must be {lat, lon, radius_km}")
            near = Near(near["lat"], near["lon"], near["radius_km"])
        lo, hi = _day(raw.get("date_from"), "date_from"), _day(raw.get("date_to"), "date_to")
        if lo and hi and lo > hi:
            raise BadInput("filters.date_from is after filters.date_to")
        return cls(metadata=dict(metadata), near=near, date_from=lo, date_to=hi)

    def to_dict(self) -> dict[str, Any]:
        """The filters as JSON."""
        return {
            "metadata": dict(self.metadata),
            "near": asdict(self.near) if self.near else None,
            "date_from": self.date_from,
            "date_to": self.date_to,
        }

    def passes(self, metadata: dict[str, Any], added_at: str) -> bool:
        """Whether an item with ``metadata`` (first image added at ``added_at``) passes."""
        for key, want in self.metadata.items():
            if metadata.get(key) != want:
                return False
        if self.near is not None:
            lat, lon = metadata.get("lat"), metadata.get("lon")
            numbers = all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)
            )
            if not numbers or self.near.distance_km(float(lat), float(lon)) > self.near.radius_km:
                return False
        if self.date_from or self.date_to:
            try:
                day = _day(metadata.get("date") or added_at, "date")
            except BadInput:
                return False
            if day is None:
                return False
            if (self.date_from and day < self.date_from) or (self.date_to and day > self.date_to):
                return False
        return True


@dataclass(frozen=True)
class Watch:
    """One watch (``watches/<watch_id>/watch.json``).

    Attributes:
        watch_id: 12 chars of ``[a-z0-9]``.
        owner: tenant id of the caller that created it.
        watched_catalog: the catalog whose items are looked for (lost dogs).
        source_catalog: the catalog where they may appear (found dogs); may equal
            ``watched_catalog``.
        min_score: a match scoring at least this makes an alert.
        filters: which source items count.
        webhook_url: where alerts are POSTed ("" = none: alerts are only listed).
        secret: the HMAC-SHA256 key of the webhook signature (shown once, at creation).
        created_at: seconds since the epoch.
        scan_job: the job that matched the items existing at creation.
    """

    watch_id: str
    owner: str
    watched_catalog: str
    source_catalog: str
    min_score: float
    filters: Filters = field(default_factory=Filters)
    webhook_url: str = ""
    secret: str = ""
    created_at: float = 0.0
    scan_job: str = ""

    def to_json(self) -> bytes:
        """The stored JSON (the one serialiser of a watch)."""
        raw = asdict(self)
        raw["filters"] = self.filters.to_dict()
        return json.dumps(raw, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Watch:
        """Parse ``watch.json``.

        Raises:
            StoreUnavailable: the stored object is not a watch.
        """
        try:
            raw = json.loads(data)
            raw["filters"] = Filters.from_dict(raw.get("filters"))
            return cls(**raw)
        except (ValueError, TypeError, KeyError, BadInput) as exc:
            raise StoreUnavailable(f"corrupt watch record: {exc}") from exc

    def to_public(self, *, with_secret: bool = False) -> dict[str, Any]:
        """The watch as the API shows it (the secret only when just created)."""
        body = {
            "id": self.watch_id,
            "watched_catalog": self.watched_catalog,
            "source_catalog": self.source_catalog,
            "min_score": self.min_score,
            "filters": self.filters.to_dict(),
            "webhook_url": self.webhook_url,
            "created_at": self.created_at,
            "scan_job": self.scan_job or None,
        }
        if with_secret:
            body["secret"] = self.secret
        return body


def alert_id_of(watch_id: str, watched_item: str, source_item: str) -> str:
    """The id of a pair's alert: the same pair always gets the same id (idempotent)."""
    digest = hashlib.sha256(f"{watch_id}\n{watched_item}\n{source_item}".encode()).hexdigest()
    return digest[:24]


@dataclass(frozen=True)
class Delivery:
    """The webhook delivery log of one alert.

    Attributes:
        status: ``pending`` (queued), ``sending`` (a POST in flight), ``retrying`` (the last
            POST failed; another is scheduled), ``delivered`` (a 2xx answer), ``failed``
            (``max_attempts`` POSTs failed), ``none`` (the watch has no webhook).
        attempts: POSTs started.
        last_error: why the last POST failed ("" when none did).
        last_status: HTTP status of the last answer (0 = no answer).
        delivered_at, next_at: seconds since the epoch (0 = not yet / no retry scheduled).
        job: the job running the current attempt (only its own re-run may take it again).
    """

    status: DeliveryStatus = "pending"
    attempts: int = 0
    last_error: str = ""
    last_status: int = 0
    delivered_at: float = 0.0
    next_at: float = 0.0
    job: str = ""


@dataclass(frozen=True)
class Alert:
    """One matched pair (``watches/<watch_id>/alerts/<alert_id>.json``).

    Attributes:
        alert_id: `alert_id_of` the pair.
        watch_id: its watch.
        watched_item, watched_image: the looked-for item and its best image of the pair.
        source_item, source_image: the item where it appeared and its best image.
        score: calibrated probability of the same individual (the best over the pair's images).
        verified: whether keypoints confirmed it (the pipeline's ``verified``).
        similarity, inliers: the embedding cosine and keypoint inliers of the best pair.
        created_at: seconds since the epoch.
        resolution: ``reunited`` / ``not_same`` once a person resolved it, else "".
        delivery: the webhook's delivery log.
    """

    alert_id: str
    watch_id: str
    watched_item: str
    watched_image: str
    source_item: str
    source_image: str
    score: float
    verified: bool
    similarity: float = 0.0
    inliers: int = 0
    created_at: float = 0.0
    resolution: str = ""
    resolved_at: float = 0.0
    delivery: Delivery = field(default_factory=Delivery)

    def to_json(self) -> bytes:
        """The stored JSON (the one serialiser of an alert)."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Alert:
        """Parse an alert.

        Raises:
            StoreUnavailable: the stored object is not an alert.
        """
        try:
            raw = json.loads(data)
            raw["delivery"] = Delivery(**raw.get("delivery", {}))
            return cls(**raw)
        except (ValueError, TypeError) as exc:
            raise StoreUnavailable(f"corrupt alert record: {exc}") from exc

    def to_public(self, watch: Watch) -> dict[str, Any]:
        """The alert as the API lists it and the webhook sends it."""
        # the explanation: POST the source image (image_url) to explain_url (a picture of
        # the keypoint matches with the watched item)
        explain = (
            f"/v1/catalogs/{watch.watched_catalog}/matches/explain?item_id={self.watched_item}"
        )
        image_url = (
            f"/v1/catalogs/{watch.source_catalog}/items/{self.source_item}"
            f"/images/{self.source_image}"
        )
        return {
            "id": self.alert_id,
            "watch_id": self.watch_id,
            "watched": {
                "catalog_id": watch.watched_catalog,
                "item_id": self.watched_item,
                "image_id": self.watched_image,
            },
            "source": {
                "catalog_id": watch.source_catalog,
                "item_id": self.source_item,
                "image_id": self.source_image,
            },
            "score": self.score,
            "verified": self.verified,
            "similarity": self.similarity,
            "inliers": self.inliers,
            "created_at": self.created_at,
            "created": datetime.fromtimestamp(self.created_at).astimezone().isoformat(),
            "resolution": self.resolution or None,
            "explain_url": explain,
            "source_image_url": image_url,
            "delivery": asdict(self.delivery),
        }


def with_changes(obj: Any, **changes: Any) -> Any:
    """A copy of a frozen record with ``changes``."""
    return replace(obj, **changes)


def now() -> float:
    """Seconds since the epoch (one place, for tests)."""
    return time.time()

"""Watches: be told (a signed webhook) when an item of one catalog appears in another.

The HTTP side only; what a watch is and does lives in the ``watches`` package (matching and
deliveries run as jobs on the task queue, never in a request). A watch belongs to the tenant
that created it, who must own both catalogs; another tenant gets 404; an admin key sees all.
"""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import RAISE

from api.auth import caller
from api.schemas import v1_doc
from api.serialise import alert_json, alerts_json, watch_json, watches_json
from api.state import state
from service import watches
from watches.model import RESOLUTIONS

bp = APIBlueprint("watches", __name__, tag="Watches", url_prefix="/v1/watches")

_WATCH = "$response.body#/id"
WATCH_LINKS = {
    name: {"operationId": name, "parameters": {"watch_id": _WATCH}}
    for name in ("get_watch", "delete_watch", "list_alerts")
}


# ------------------------------------------------------------------------------ schemas
class NearIn(Schema):
    class Meta:
        unknown = RAISE

    lat = Float(required=True, validate=Range(-90, 90))
    lon = Float(required=True, validate=Range(-180, 180))
    radius_km = Float(required=True, validate=Range(0, 20040))


class FiltersIn(Schema):
    class Meta:
        unknown = RAISE

    metadata = Dict(metadata={"description": 'exact metadata values, e.g. {"species": "dog"}'})
    near = Nested(NearIn, allow_none=True, metadata={"description": "items' lat/lon within"})
    date_from = String(allow_none=True, metadata={"example": "2026-12-01"})
    date_to = String(allow_none=True, metadata={"example": "2026-12-31"})


class WatchIn(Schema):
    """A new watch (no other keys)."""

    class Meta:
        unknown = RAISE

    watched_catalog = String(
        required=True,
        validate=Length(1, 64),
        metadata={"description": "the catalog whose items are looked for (lost dogs)"},
    )
    source_catalog = String(
        validate=Length(1, 64),
        metadata={"description": "where they may appear (found dogs); default: the same"},
    )
    min_score = Float(validate=Range(0, 1), metadata={"description": "default 0.5"})
    filters = Nested(FiltersIn, metadata={"description": "which source items count"})
    webhook_url = String(
        validate=Length(0, 2000),
        metadata={"description": "http(s) URL POSTed each alert (signed); empty: none"},
    )


class WatchOut(Schema):
    id = String(required=True, metadata={"example": "w3k9x0q7d1ma"})
    watched_catalog = String(required=True)
    source_catalog = String(required=True)
    min_score = Float(required=True)
    filters = Dict(required=True)
    webhook_url = String(required=True)
    created_at = Float(required=True, metadata={"description": "seconds since the epoch"})
    scan_job = String(
        required=True, allow_none=True, metadata={"description": "the scan of existing items"}
    )
    secret = String(metadata={"description": "HMAC-SHA256 key of the signature (creation only)"})


class WatchList(Schema):
    watches = List(Nested(WatchOut), required=True)


class SideOut(Schema):
    catalog_id = String(required=True)
    item_id = String(required=True)
    image_id = String(required=True)


class DeliveryOut(Schema):
    status = String(required=True, metadata={"description": "pending ... delivered, failed"})
    attempts = Integer(required=True)
    last_error = String(required=True)
    last_status = Integer(required=True)
    delivered_at = Float(required=True)
    next_at = Float(required=True)
    job = String(required=True)


class AlertOut(Schema):
    id = String(required=True)
    watch_id = String(required=True)
    watched = Nested(SideOut, required=True)
    source = Nested(SideOut, required=True)
    score = Float(required=True)
    verified = Boolean(required=True)
    similarity = Float(required=True)
    inliers = Integer(required=True)
    created_at = Float(required=True)
    created = String(required=True)
    resolution = String(required=True, allow_none=True)
    explain_url = String(required=True)
    source_image_url = String(required=True)
    delivery = Nested(DeliveryOut, required=True)


class AlertList(Schema):
    alerts = List(Nested(AlertOut), required=True)


class ResolutionIn(Schema):
    class Meta:
        unknown = RAISE

    resolution = String(required=True, validate=OneOf(RESOLUTIONS))


# ------------------------------------------------------------------------------- routes
@bp.post("")
@bp.input(WatchIn, arg_name="body")
@bp.output(WatchOut, status_code=201, description="The new watch", links=WATCH_LINKS)
@v1_doc(
    bp,
    "create_watch",
    {
        400: "the body is not JSON",
        404: "unknown (or another tenant's) catalog",
        422: "bad field, or a refused webhook address",
    },
    body={"required": True, "content": {"application/json": {"schema": WatchIn}}},
)
def create_watch(body: dict):
    """Watch for the items of ``watched_catalog`` in ``source_catalog`` (both yours).

    Every image added to either side afterwards is matched by a job (the upload never waits);
    the existing ones are matched once now (``scan_job``). A match scoring ``min_score`` or
    more makes one alert per item pair, POSTed to ``webhook_url`` with the header
    ``X-Sighting-Signature: sha256=<HMAC-SHA256 of the body with secret>``. ``secret`` is
    shown only in this answer. Addresses on private, loopback or link-local networks are
    refused (422) unless ``SIGHTING_WEBHOOK_ALLOW`` lists them.
    """
    return watch_json(watches.create_watch(state(), caller(), body), with_secret=True), 201


@bp.get("")
@bp.output(WatchList)
@v1_doc(bp, "list_watches", {})
def list_watches():
    """The caller's watches (an admin key sees every watch)."""
    return watches_json(watches.list_watches(state(), caller()))


@bp.get("/<watch_id>")
@bp.output(WatchOut)
@v1_doc(bp, "get_watch", {})
def get_watch(watch_id: str):
    """One watch (without its secret)."""
    return watch_json(watches.get_watch(state(), caller(), watch_id))


@bp.delete("/<watch_id>")
@v1_doc(bp, "delete_watch", {}, responses={204: {"description": "Deleted"}})
def delete_watch(watch_id: str):
    """Delete a watch and its alerts; deliveries still queued find it gone. Answers 204."""
    watches.delete_watch(state(), caller(), watch_id)
    return "", 204


@bp.get("/<watch_id>/alerts")
@bp.output(AlertList)
@v1_doc(bp, "list_alerts", {})
def list_alerts(watch_id: str):
    """The watch's alerts, oldest first: both items, their best image pair, ``score``,
    ``verified``, the explanation (POST the source image to ``explain_url``), the
    resolution and the webhook's delivery log (status, attempts, last error)."""
    return alerts_json(*watches.list_alerts(state(), caller(), watch_id))


@bp.post("/<watch_id>/alerts/<alert_id>/resolve")
@bp.input(ResolutionIn, arg_name="body")
@bp.output(AlertOut)
@v1_doc(
    bp,
    "resolve_alert",
    {400: "the body is not JSON"},
    body={"required": True, "content": {"application/json": {"schema": ResolutionIn}}},
)
def resolve_alert(watch_id: str, alert_id: str, body: dict):
    """Mark an alert ``reunited`` or ``not_same`` (a person looked at the pair)."""
    s, who = state(), caller()
    return alert_json(*watches.resolve_alert(s, who, watch_id, alert_id, body["resolution"]))

"""Watches as the API uses them: create (after checking both catalogs), read, delete, alerts.

The watch, its alerts and their matching and delivery live in the ``watches`` package; this
module adds who may do what: a watch belongs to the tenant that created it, who must own both
catalogs (404 otherwise, as for catalogs); an admin sees every watch.
"""

from __future__ import annotations

from typing import Any

from service.access import Caller, owned_manifest
from service.jobs import refit_calibration_soon
from service.state import SightingState
from watches.model import Alert, Watch
from watches.service import Watches, parse_watch


def _watches(s: SightingState) -> Watches:
    return Watches(s.repository.store, s.jobs)


def create_watch(s: SightingState, caller: Caller, body: dict[str, Any]) -> Watch:
    """A new watch from the JSON body (its ``secret`` is in the result, shown once).

    The catalogs are checked first (404 unknown or foreign), so that a foreign caller learns
    nothing and no webhook host is resolved for it.

    Raises:
        NotFound: a catalog is unknown or another tenant's.
        BadInput: a bad field or a refused webhook address.
    """
    watched = body.get("watched_catalog")
    for catalog_id in {watched, body.get("source_catalog", watched)}:
        owned_manifest(s, caller, str(catalog_id))
    allow = tuple(s.settings.webhook_allow)
    watch = parse_watch(body, caller.tenant, s.settings.watch_min_score, allow)
    return _watches(s).create(watch)


def list_watches(s: SightingState, caller: Caller) -> list[Watch]:
    """The caller's watches (every watch for an admin), oldest first."""
    return _watches(s).store.list(caller.scope)


def get_watch(s: SightingState, caller: Caller, watch_id: str) -> Watch:
    """One watch (404 unknown or another tenant's)."""
    return _watches(s).get(watch_id, caller.scope)


def delete_watch(s: SightingState, caller: Caller, watch_id: str) -> None:
    """Delete a watch and its alerts."""
    _watches(s).delete(watch_id, caller.scope)


def list_alerts(s: SightingState, caller: Caller, watch_id: str) -> tuple[Watch, list[Alert]]:
    """A watch and its alerts, oldest first."""
    return _watches(s).alerts(watch_id, caller.scope)


def resolve_alert(
    s: SightingState, caller: Caller, watch_id: str, alert_id: str, resolution: str
) -> tuple[Watch, Alert]:
    """Mark an alert ``reunited`` or ``not_same``; the watch and the changed alert.

    A ``not_same`` pair becomes an impostor record of the watched catalog
    (`sightings.impostors`); the catalog's calibration refit is scheduled to read it.
    """
    watches = _watches(s)
    alert = watches.resolve(watch_id, alert_id, caller.scope, resolution)
    watch = watches.get(watch_id, caller.scope)
    refit_calibration_soon(s, watch.watched_catalog, watch.owner)
    return watch, alert

"""Create, read, delete watches; schedule their matching; resolve alerts.

What the API (and any other caller) uses; HTTP stays in ``api.routes.watches``. Matching and
delivery never run here: they are jobs (`watches.job`) on the one task queue, so an upload
only pays for one store listing (`schedule_match`).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from catalog.repository import CatalogRepository
from catalog.store import Store
from core.errors import BadInput, NotFound
from jobs.queue import JobQueue
from sightings.impostors import drop_impostor, impostor_record, put_impostor
from watches.delivery import needs_first_attempt
from watches.model import RESOLUTIONS, Alert, Filters, Watch, now, with_changes
from watches.store import INDEX, WatchStore
from watches.webhook import check_url

log = logging.getLogger(__name__)
SCAN = "watch.scan"
MATCH = "watch.match"
DELIVER = "watch.deliver"
PENDING = "job-index/watch-match/"
_FIELDS = {"watched_catalog", "source_catalog", "min_score", "filters", "webhook_url"}


def parse_watch(body: Any, owner: str, default_min_score: float, allow: tuple[str, ...]) -> Watch:
    """A new watch (not stored) from the JSON body of ``POST /v1/watches``.

    Raises:
        BadInput: a missing or bad field, or a refused webhook URL.
    """
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise BadInput(f"unknown fields {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    watched = body.get("watched_catalog")
    if not isinstance(watched, str) or not watched:
        raise BadInput("watched_catalog (the catalog whose items are looked for) is required")
    source = body.get("source_catalog", watched)
    if not isinstance(source, str) or not source:
        raise BadInput("source_catalog must be a catalog id")
    min_score = body.get("min_score", default_min_score)
    if isinstance(min_score, bool) or not isinstance(min_score, int | float):
        raise BadInput("min_score must be a number in [0, 1]")
    if not 0.0 <= float(min_score) <= 1.0:
        raise BadInput("min_score must be in [0, 1]")
    url = body.get("webhook_url") or ""
    if url:
        check_url(url, allow)
    return Watch(
        watch_id="",
        owner=owner,
        watched_catalog=watched,
        source_catalog=source,
        min_score=float(min_score),
        filters=Filters.from_dict(body.get("filters")),
        webhook_url=url,
        secret=secrets.token_urlsafe(32),
        created_at=now(),
    )


class Watches:
    """Watches over one store and one queue."""

    def __init__(self, store: Store, queue: JobQueue) -> None:
        self.store = WatchStore(store)
        self.repository = CatalogRepository(store)
        self.queue = queue

    def create(self, watch: Watch) -> Watch:
        """Store ``watch`` (both catalogs must exist) and queue the scan of existing items.

        Raises:
            NotFound: a catalog does not exist.
        """
        for catalog_id in (watch.watched_catalog, watch.source_catalog):
            self.repository.get_manifest(catalog_id)
        created = self.store.create(watch)
        job = self.queue.submit(SCAN, {"watch_id": created.watch_id}, owner=created.owner)
        created = with_changes(created, scan_job=job.job_id)
        self.store.put(created)
        return created

    def get(self, watch_id: str, owner: str | None) -> Watch:
        """The watch if ``owner`` (None: an admin) may see it.

        Raises:
            NotFound: no such watch, or another tenant's (404 hides it).
        """
        watch = self.store.get(watch_id)
        if owner is not None and watch.owner != owner:
            raise NotFound(f"no watch {watch_id!r}")
        return watch

    def delete(self, watch_id: str, owner: str | None) -> None:
        """Delete a watch and its alerts (queued deliveries then find it gone)."""
        self.get(watch_id, owner)
        self.store.delete(watch_id)

    def alerts(self, watch_id: str, owner: str | None) -> tuple[Watch, list[Alert]]:
        """The watch and its alerts, oldest first."""
        watch = self.get(watch_id, owner)
        return watch, self.store.alerts(watch_id)

    def resolve(self, watch_id: str, alert_id: str, owner: str | None, resolution: Any) -> Alert:
        """Mark an alert ``reunited`` or ``not_same`` (a person looked at it).

        Raises:
            BadInput: another resolution.
            NotFound: no such watch or alert.
        """
        if resolution not in RESOLUTIONS:
            raise BadInput(f"resolution must be one of {', '.join(RESOLUTIONS)}")
        watch = self.get(watch_id, owner)

        def change(alert: Alert) -> Alert:
            return with_changes(alert, resolution=resolution, resolved_at=now())

        alert = self.store.update_alert(watch_id, alert_id, change)
        assert alert is not None
        self._feed_calibration(watch, alert)
        return alert

    def _feed_calibration(self, watch: Watch, alert: Alert) -> None:
        """A ``not_same`` alert is an impostor pair for the watched catalog's calibration
        (`sightings.impostors`; the refit job reads it); another resolution removes it."""
        store = self.repository.store
        catalog_id = watch.watched_catalog
        if alert.resolution != "not_same":
            drop_impostor(store, catalog_id, alert.alert_id)
            return
        try:
            embedder = self.repository.get_manifest(catalog_id).embedder_fingerprint
        except NotFound:
            return
        record = impostor_record(
            alert.alert_id,
            alert.watched_item,
            similarity=alert.similarity,
            inliers=alert.inliers,
            score=alert.score,
            verified=alert.verified,
            embedder=embedder,
        )
        put_impostor(store, catalog_id, alert.alert_id, record)


def pending_match(queue: JobQueue, catalog_id: str) -> str | None:
    """The catalog's match job that is still queued (not yet started), or None."""
    try:
        job_id = queue.jobs.store.get(f"{PENDING}{catalog_id}").decode()
        record = queue.get(job_id)
    except NotFound:
        return None
    return job_id if record.state == "queued" else None


def schedule_match(queue: JobQueue, catalog_id: str, owner: str) -> str | None:
    """After an upload to ``catalog_id``: make sure a match job will see it, if any watch
    concerns the catalog. At most one queued job per catalog (a running one does not count:
    it may have looked already, so a new one is queued behind it).

    Returns:
        The id of the job that will match the upload, or None when no watch concerns it.
    """
    if not queue.jobs.store.list_children(f"{INDEX}{catalog_id}/"):
        return None
    pending = pending_match(queue, catalog_id)
    if pending is not None:
        return pending
    record = queue.submit(MATCH, {"catalog_id": catalog_id}, owner=owner)
    queue.jobs.store.put(f"{PENDING}{catalog_id}", record.job_id.encode())
    return record.job_id


def queue_delivery(queue: JobQueue, alert: Alert, owner: str) -> None:
    """Queue the first delivery attempt of an alert that has a webhook to go to."""
    if needs_first_attempt(alert):
        params = {"watch_id": alert.watch_id, "alert_id": alert.alert_id, "attempt": 1}
        queue.submit(DELIVER, params, owner=owner)

"""The job kinds of watches (``SIGHTING_JOB_MODULES`` lists ``watches.job``).

* ``watch.scan`` (``watch_id``): when a watch is created, match every image of its source
  catalog against its watched catalog, once; every image of both sides is then "seen".
* ``watch.match`` (``catalog_id``): after uploads to a catalog (debounced: it waits until the
  catalog has not changed for ``SIGHTING_WATCH_DEBOUNCE_S``), match its images that no job
  has matched yet for each watch concerning it, and again while new ones keep arriving.
* ``watch.deliver`` (``watch_id``, ``alert_id``, ``attempt``): one webhook POST
  (`watches.delivery`); a failed one queues the next attempt with exponential back-off.

Matching is idempotent: an image matched twice (a job re-run after its worker died) finds its
pairs' alerts already there. Models load inside the functions, in the consumer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from catalog.repository import CatalogRepository
from core.errors import NotFound
from jobs.queue import JobQueue
from jobs.registry import job_kind
from jobs.runner import JobContext
from watches.delivery import DeliveryPolicy, deliver_once
from watches.model import Watch
from watches.service import DELIVER, MATCH, SCAN, queue_delivery
from watches.store import WatchStore

log = logging.getLogger(__name__)
MAX_ROUNDS = 20  # match rounds per job while uploads keep arriving
_queues: dict[tuple, JobQueue] = {}


def _queue(ctx: JobContext) -> JobQueue:
    key = (id(ctx.store), str(ctx.settings.queue_url), str(ctx.settings.data_dir))
    if key not in _queues:
        _queues[key] = JobQueue(ctx.settings, ctx.store)
    return _queues[key]


def _matcher(ctx: JobContext):
    from matching.engine import shared_pipeline
    from watches.matcher import WatchMatcher

    return WatchMatcher(
        CatalogRepository(ctx.store),
        shared_pipeline(ctx.settings),
        WatchStore(ctx.store),
        top_k=ctx.settings.watch_top_k,
    )


def _image_ids(repository: CatalogRepository, catalog_id: str) -> set[str]:
    manifest = repository.get_manifest(catalog_id)
    return {image_id for item in manifest.items.values() for image_id in item.images}


def _match_new(ctx: JobContext, matcher, watch: Watch, catalog_id: str) -> tuple[int, int]:
    """Match the unseen images of ``catalog_id`` for ``watch``; returns (images, new alerts)."""
    store, repository = matcher.watches, matcher.repository
    new = sorted(_image_ids(repository, catalog_id) - store.seen(watch.watch_id, catalog_id))
    if not new:
        return 0, 0
    outcome = matcher.match_images(
        watch, catalog_id, new, lambda d, t: ctx.progress(d, t, f"matching {catalog_id}")
    )
    for alert in outcome.new_alerts + outcome.touched:  # a re-run queues what a dead one did not
        if watch.webhook_url:
            queue_delivery(_queue(ctx), alert, watch.owner)
    store.mark_seen(watch.watch_id, catalog_id, set(new))
    return len(new), len(outcome.new_alerts)


@job_kind(SCAN)
def scan_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Match a new watch's existing source images once."""
    watches = WatchStore(ctx.store)
    try:
        watch = watches.get(str(params["watch_id"]))
        repository = CatalogRepository(ctx.store)
        watched_now = _image_ids(repository, watch.watched_catalog)
        matcher = _matcher(ctx)
        images, alerts = _match_new(ctx, matcher, watch, watch.source_catalog)
        if watch.watched_catalog != watch.source_catalog:
            # the pairs of the watched images that existed are found from the source side
            watches.mark_seen(watch.watch_id, watch.watched_catalog, watched_now)
    except NotFound as exc:
        return {"status": f"gone: {exc.message}"}
    return {"watch_id": watch.watch_id, "images": images, "alerts": alerts}


def _settle(repository: CatalogRepository, catalog_id: str, quiet_s: float, ctx) -> None:
    digest = repository.get_manifest(catalog_id).content_digest()
    since = time.monotonic()
    while time.monotonic() - since < quiet_s:
        ctx.progress(0, 0, f"waiting for uploads to pause ({quiet_s:g} s)")
        time.sleep(min(0.5, quiet_s))
        current = repository.get_manifest(catalog_id).content_digest()
        if current != digest:
            digest, since = current, time.monotonic()


@job_kind(MATCH)
def match_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Match the new images of a catalog for every watch concerning it."""
    catalog_id = str(params["catalog_id"])
    repository = CatalogRepository(ctx.store)
    watches = WatchStore(ctx.store)
    quiet_s = float(params.get("debounce_s", ctx.settings.watch_debounce_s))
    images = alerts = 0
    try:
        _settle(repository, catalog_id, quiet_s, ctx)
        matcher = None
        for _ in range(MAX_ROUNDS):
            round_images = 0
            for watch in watches.watching(catalog_id):
                matcher = matcher or _matcher(ctx)
                try:
                    n, a = _match_new(ctx, matcher, watch, catalog_id)
                except NotFound as exc:  # the other catalog was deleted
                    log.info("watch %s: %s", watch.watch_id, exc.message)
                    continue
                round_images, alerts = round_images + n, alerts + a
            images += round_images
            if round_images == 0:
                break
    except NotFound:
        return {"catalog_id": catalog_id, "status": "catalog deleted"}
    return {"catalog_id": catalog_id, "images": images, "alerts": alerts}


@job_kind(DELIVER)
def deliver_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """One webhook POST of an alert; queues the next attempt when it failed."""
    watch_id, alert_id = str(params["watch_id"]), str(params["alert_id"])
    attempt = int(params.get("attempt", 1))
    policy = DeliveryPolicy.from_settings(ctx.settings)
    result = deliver_once(WatchStore(ctx.store), watch_id, alert_id, attempt, policy, ctx.job_id)
    if result.retry_in_s is not None:
        _queue(ctx).submit(
            DELIVER,
            {"watch_id": watch_id, "alert_id": alert_id, "attempt": attempt + 1},
            owner=ctx.owner,
            delay_s=result.retry_in_s,
        )
    return {
        "alert_id": alert_id,
        "attempt": attempt,
        "status": result.status,
        "http_status": result.http_status,
        "retry_in_s": result.retry_in_s,
    }

"""The ``calibration`` job kind: refit a catalog's own calibration after it changes.

Every upload or deletion of items or images calls `schedule_refit` (the API does, after the
write; it never waits for the fit). At most one refit per catalog is pending at a time: its
job id is kept at ``job-index/calibration/<catalog_id>``, and while that job is queued or
running no other is submitted. The job debounces: it waits until the catalog's content has
not changed for ``SIGHTING_CALIBRATION_DEBOUNCE_S`` (a merchant uploading 200 products in a
row gets one fit, after the last), then fits (`catalog.calibration.refit_catalog_calibration`)
and fits again if items arrived during the fit (the stored calibration must match the
catalog's content digest, or it is not used: the kind's default stays, marked so).

Calibration-only writes change the manifest's version but not its content digest, so a refit
never triggers another. A review of one of the catalog's sightings schedules a refit too: the
fit reads the reviewed sightings (`sightings.pairs`) and rests on them first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from catalog.repository import CatalogRepository
from catalog.store import Store
from core.errors import Conflict, NotFound
from jobs.queue import JobQueue
from jobs.registry import job_kind
from jobs.runner import JobContext
from sightings.impostors import impostor_records
from sightings.pairs import reviewed_pairs
from sightings.repository import SightingRepository

log = logging.getLogger(__name__)
KIND = "calibration"
INDEX = "job-index/calibration/"
MAX_FITS = 5  # fits per job when the catalog keeps changing during them


def _index_key(catalog_id: str) -> str:
    return f"{INDEX}{catalog_id}"


def pending_refit(queue: JobQueue, catalog_id: str) -> str | None:
    """The id of the catalog's refit job that is still queued or running, or None."""
    try:
        job_id = queue.jobs.store.get(_index_key(catalog_id)).decode()
        record = queue.get(job_id)
    except NotFound:
        return None
    return None if record.finished else job_id


def schedule_refit(queue: JobQueue, catalog_id: str, owner: str) -> str:
    """Make sure a refit of ``catalog_id`` will run after its latest change; returns the id
    of the job that will (a pending one, or a new one)."""
    pending = pending_refit(queue, catalog_id)
    if pending is not None:
        return pending  # it waits for the catalog to settle, so it sees this change too
    record = queue.submit(KIND, {"catalog_id": catalog_id}, owner=owner)
    queue.jobs.store.put(_index_key(catalog_id), record.job_id.encode())
    return record.job_id


def forget_refit(store: Store, catalog_id: str) -> None:
    """Drop a deleted catalog's pending-refit entry (its job, if queued, finds the catalog
    gone and says so)."""
    store.delete(_index_key(catalog_id))


def _settle(store: Store, catalog_id: str, quiet_s: float, ctx: JobContext) -> str:
    """Wait until the catalog's content digest has not changed for ``quiet_s``; return it."""
    repository = CatalogRepository(store)
    digest = repository.get_manifest(catalog_id).content_digest()
    since = time.monotonic()
    while time.monotonic() - since < quiet_s:
        ctx.progress(0, 0, f"waiting for the catalog to settle ({quiet_s:g} s without changes)")
        time.sleep(min(1.0, quiet_s))
        now = repository.get_manifest(catalog_id).content_digest()
        if now != digest:
            digest, since = now, time.monotonic()
    return digest


@job_kind(KIND)
def refit_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Refit ``params["catalog_id"]``'s calibration once the catalog has settled.

    Returns:
        status, threshold, genuine and impostor pair counts, fits, stored.
    """
    from catalog.calibration import refit_catalog_calibration
    from matching.engine import shared_pipeline

    catalog_id = str(params["catalog_id"])
    store = ctx.store
    repository = CatalogRepository(store)
    quiet_s = float(params.get("debounce_s", ctx.settings.calibration_debounce_s))
    result, fits = None, 0
    try:
        while fits < MAX_FITS:
            digest = _settle(store, catalog_id, quiet_s, ctx)
            ctx.progress(fits, MAX_FITS, "fitting the catalog's calibration")
            pipeline = shared_pipeline(ctx.settings)  # loaded once per consumer
            manifest = repository.get_manifest(catalog_id)
            reviewed = reviewed_pairs(SightingRepository(store), manifest)
            # impostor pairs people marked elsewhere (a watch's alert "not the same")
            impostors = impostor_records(store, manifest)
            digest_of_reviews = "+".join(d for d in (reviewed.digest, impostors.digest) if d)
            result = refit_catalog_calibration(
                repository,
                pipeline,
                catalog_id,
                reviewed=reviewed.records + impostors.records,
                reviews_digest=digest_of_reviews,
            )
            fits += 0 if result.skipped else 1
            if result.stored and repository.get_manifest(catalog_id).content_digest() == digest:
                break
            log.info("catalog %s changed during its calibration fit: fitting again", catalog_id)
    except NotFound:
        return {"catalog_id": catalog_id, "status": "catalog deleted", "stored": False}
    except Conflict as exc:  # indexed with another embedder: re-index first
        return {"catalog_id": catalog_id, "status": exc.message, "stored": False}
    cal = result.calibration if result is not None else None
    return {
        "catalog_id": catalog_id,
        "status": cal.status if cal is not None else "none",
        "threshold": cal.threshold if cal is not None else None,
        "genuine": cal.genuine if cal is not None else 0,
        "impostors": cal.impostors if cal is not None else 0,
        "reviewed_pairs": cal.reviewed_pairs if cal is not None else 0,
        "fits": fits,
        "stored": bool(result and result.stored),
    }

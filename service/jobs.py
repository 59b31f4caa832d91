"""Jobs of the task queue as the API sees them: submit, read one (the caller's), its files."""

from __future__ import annotations

import logging

from core.errors import Conflict, NotFound, SightingError
from jobs import JobRecord
from jobs.calibration import schedule_refit
from service.access import Caller
from service.state import SightingState
from watches.service import schedule_match

log = logging.getLogger(__name__)


def submit_job(s: SightingState, caller: Caller, kind: str, params: dict) -> JobRecord:
    """Queue a job of ``kind`` for the caller; its record, ``queued``."""
    return s.jobs.submit(kind, params, owner=caller.tenant)


def refit_calibration_soon(s: SightingState, catalog_id: str, owner: str) -> None:
    """Queue the refit of a changed catalog's own calibration (`jobs.calibration`; off with
    ``SIGHTING_CALIBRATION_REFIT=false``). Never fails the write that changed it: the kind's
    default calibration stays in use, marked so, until a refit is stored."""
    if not s.settings.calibration_refit:
        return
    try:
        schedule_refit(s.jobs, catalog_id, owner)
    except SightingError as exc:
        log.warning("catalog %s: calibration refit not queued: %s", catalog_id, exc.message)


def match_watches_soon(s: SightingState, catalog_id: str, owner: str) -> None:
    """Queue the matching of a catalog's new images for the watches that concern it
    (`watches.service.schedule_match`); the upload never waits for it, and a failure to queue
    never fails the upload (the next upload's job matches every image not matched yet)."""
    try:
        schedule_match(s.jobs, catalog_id, owner)
    except SightingError as exc:
        log.warning("catalog %s: watch matching not queued: %s", catalog_id, exc.message)


def get_job(s: SightingState, caller: Caller, job_id: str) -> JobRecord:
    """The job's record if the caller may see it (its tenant, or an admin), else 404."""
    record = s.jobs.get(job_id)
    if not caller.may_use(record.owner):
        raise NotFound(f"no job {job_id!r}")
    return record


def job_file(s: SightingState, caller: Caller, job_id: str, name: str) -> bytes:
    """One result file of a finished job (409 while it is not done; 404 no such file)."""
    record = get_job(s, caller, job_id)
    if record.state != "done":
        raise Conflict(
            f"job {job_id!r} is {record.state}; its files are served once it is done",
            details={"state": record.state},
        )
    if name not in record.files:
        raise NotFound(f"job {job_id!r} has no file {name!r}", details={"files": record.files})
    return s.jobs.file(job_id, name)

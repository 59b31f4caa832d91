"""Jobs: the state, progress and result files of a long job (analytics, batches, refits).

Jobs are submitted by the routes of their kind (e.g. ``POST /v1/catalogs/<id>/analytics``)
and read here. A job belongs to the tenant that submitted it: another tenant gets 404, as for
catalogs; an admin key sees every job.
"""

from __future__ import annotations

import logging
import mimetypes

from apiflask import APIBlueprint
from flask import Response, current_app

from api.auth import caller
from api.schemas import v1_doc
from api.state import state
from core.errors import Conflict, NotFound, SightingError
from jobs import JobQueue, JobRecord
from jobs.calibration import schedule_refit
from watches.service import schedule_match

log = logging.getLogger(__name__)

bp = APIBlueprint("jobs", __name__, tag="Jobs", url_prefix="/v1/jobs")

_FILE_ERRORS = {409: "the job is not done yet: poll GET /v1/jobs/<id>"}
_FILE = {200: {"description": "The file (CSV, PNG, HTML, JSON...)"}}


def job_queue() -> JobQueue:
    """This worker's `JobQueue` (built on first use over the app's store)."""
    queue = current_app.extensions.get("jobs")
    if queue is None:
        s = state()
        queue = current_app.extensions["jobs"] = JobQueue(s.settings, s.repository.store)
    return queue


def refit_calibration_soon(catalog_id: str, owner: str) -> None:
    """Queue the refit of a changed catalog's own calibration (`jobs.calibration`; off with
    ``SIGHTING_CALIBRATION_REFIT=false``). Never fails the write that changed it: the kind's
    default calibration stays in use, marked so, until a refit is stored."""
    if not state().settings.calibration_refit:
        return
    try:
        schedule_refit(job_queue(), catalog_id, owner)
    except SightingError as exc:
        log.warning("catalog %s: calibration refit not queued: %s", catalog_id, exc.message)


def match_watches_soon(catalog_id: str, owner: str) -> None:
    """Queue the matching of a catalog's new images for the watches that concern it
    (`watches.service.schedule_match`); the upload never waits for it, and a failure to queue
    never fails the upload (the next upload's job matches every image not matched yet)."""
    try:
        schedule_match(job_queue(), catalog_id, owner)
    except SightingError as exc:
        log.warning("catalog %s: watch matching not queued: %s", catalog_id, exc.message)


def owned_job(job_id: str) -> JobRecord:
    """The job's record if the caller may see it, else 404."""
    record = job_queue().get(job_id)
    who = caller()
    if not who.admin and record.owner != who.tenant:
        raise NotFound(f"no job {job_id!r}")
    return record


def job_json(record: JobRecord) -> dict:
    """A job as the API answers it, with the URLs of its result files."""
    body = record.to_public()
    body["file_urls"] = {name: f"/v1/jobs/{record.job_id}/files/{name}" for name in record.files}
    return body


@bp.get("/<job_id>")
@v1_doc(
    bp,
    "get_job",
    {},
    responses={200: {"description": "state, progress, message, result, files, file_urls"}},
)
def get_job(job_id: str):
    """A job: ``state`` (queued, running, done, failed), ``progress``, ``message``, ``files``."""
    return job_json(owned_job(job_id))


@bp.get("/<job_id>/files/<name>")
@v1_doc(bp, "get_job_file", _FILE_ERRORS, responses=_FILE)
def get_job_file(job_id: str, name: str):
    """One result file of a finished job (409 while the job is not done)."""
    return _job_file(job_id, name)


@bp.get("/<job_id>/files/<folder>/<name>")
@v1_doc(bp, "get_job_file_in_folder", _FILE_ERRORS, responses=_FILE)
def get_job_file_in_folder(job_id: str, folder: str, name: str):
    """A result file one folder deep (e.g. ``sheets/cluster_0.jpg``) of a finished job."""
    return _job_file(job_id, f"{folder}/{name}")


def _job_file(job_id: str, name: str):
    record = owned_job(job_id)
    if record.state != "done":
        raise Conflict(
            f"job {job_id!r} is {record.state}; its files are served once it is done",
            details={"state": record.state},
        )
    if name not in record.files:
        raise NotFound(f"job {job_id!r} has no file {name!r}", details={"files": record.files})
    data = job_queue().file(job_id, name)
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if mimetype.startswith("text/"):
        mimetype += "; charset=utf-8"
    return Response(data, mimetype=mimetype)

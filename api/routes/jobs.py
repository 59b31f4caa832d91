"""Jobs: the state, progress and result files of a long job (analytics, batches, refits).

Jobs are submitted by the routes of their kind (e.g. ``POST /v1/catalogs/<id>/analytics``)
and read here. A job belongs to the tenant that submitted it: another tenant gets 404, as for
catalogs; an admin key sees every job.
"""

from __future__ import annotations

import mimetypes

from apiflask import APIBlueprint
from flask import Response

from api.auth import caller
from api.schemas import v1_doc
from api.serialise import job_json
from api.state import state
from service import jobs

bp = APIBlueprint("jobs", __name__, tag="Jobs", url_prefix="/v1/jobs")

_FILE_ERRORS = {409: "the job is not done yet: poll GET /v1/jobs/<id>"}
_FILE = {200: {"description": "The file (CSV, PNG, HTML, JSON...)"}}


@bp.get("/<job_id>")
@v1_doc(
    bp,
    "get_job",
    {},
    responses={200: {"description": "state, progress, message, result, files, file_urls"}},
)
def get_job(job_id: str):
    """A job: ``state`` (queued, running, done, failed), ``progress``, ``message``, ``files``."""
    return job_json(jobs.get_job(state(), caller(), job_id))


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
    data = jobs.job_file(state(), caller(), job_id, name)
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if mimetype.startswith("text/"):
        mimetype += "; charset=utf-8"
    return Response(data, mimetype=mimetype)

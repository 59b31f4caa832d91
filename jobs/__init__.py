"""Sighting's one task queue for long jobs (analytics, camera-trap batches, calibration refits).

Interface::

    from jobs import JobQueue, job_kind

    @job_kind("analytics")                      # in a module named by SIGHTING_JOB_MODULES
    def run(params: dict, ctx: JobContext) -> dict:
        ctx.progress(3, 10, "clustering")       # heartbeat + progress; raises Superseded
        (ctx.files_dir / "clusters.csv").write_text(...)   # result files
        return {"clusters": 5}                  # the record's JSON result

    queue = JobQueue(settings)                  # API: app.extensions["jobs"]
    record = queue.submit("analytics", {"catalog_id": cid}, owner=caller().tenant)
    queue.get(record.job_id).state              # queued | running | done | failed

Records live in the catalog store (``jobs/<id>/record.json``, files ``jobs/<id>/files/``);
Huey (SQLite by default, Redis with ``SIGHTING_QUEUE_URL=redis://...``) carries the ids to the
consumers (`jobs.worker`, ``python -m jobs worker``). HTTP: ``GET /v1/jobs/<id>`` and
``GET /v1/jobs/<id>/files/<name>`` (`api.routes.jobs`).
"""

from jobs.queue import JobQueue
from jobs.records import JobRecord
from jobs.registry import job_kind
from jobs.runner import JobContext, Superseded

__all__ = ["JobContext", "JobQueue", "JobRecord", "Superseded", "job_kind"]

"""The queue: Huey carries job ids from whoever submits to the consumers that run them.

``SIGHTING_QUEUE_URL`` picks Huey's storage: empty (the default) is a SQLite file under the
data dir (one host: gunicorn's workers and the consumer it starts share it), ``sqlite:///path``
a SQLite file elsewhere, ``redis://host:port/db`` a Redis server that consumers on several hosts
share (their job records must then live in a store they all reach, i.e. S3). The queue only
carries job ids; the truth about a job is its record in the store (`jobs.records`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from catalog.repository import new_id
from catalog.store import Store
from catalog.stores import open_store
from core.errors import BadInput
from core.settings import Settings
from jobs.records import JobRecord, JobStore
from jobs.runner import recover_stale, run_job

log = logging.getLogger(__name__)
TASK_NAME = "sighting.run_job"
HUEY_NAME = "sighting-jobs"


def make_huey(settings: Settings):
    """The Huey instance of ``settings.queue_url`` (opens nothing until used).

    Raises:
        BadInput: the URL is neither empty, ``sqlite:///...`` nor ``redis://...``.
    """
    from huey import RedisHuey, SqliteHuey

    url = settings.queue_url.strip()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(HUEY_NAME, url=url, results=False)
    if url == "" or url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") - 1 :]) if url else default_sqlite_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(HUEY_NAME, filename=str(path), results=False)
    raise BadInput(f"SIGHTING_QUEUE_URL {url!r}: use '', sqlite:///PATH or redis://HOST:PORT/DB")


def default_sqlite_path(settings: Settings) -> Path:
    """``<data_dir>/.queue/jobs.sqlite3`` (a dot folder: the local store never lists it)."""
    return Path(settings.data_dir) / ".queue" / "jobs.sqlite3"


class JobQueue:
    """Submit jobs, read them, and (in a consumer) run them.

    Build one per process: ``JobQueue(settings)``; the API keeps one in
    ``app.extensions["jobs"]``, the consumer (``python -m jobs worker``) its own.
    """

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.jobs = JobStore(store or open_store(settings))
        self.huey = make_huey(settings)
        self._task = self.huey.task(name=TASK_NAME)(self._run)

    # --- the submitting side ----------------------------------------------------------
    def submit(
        self, kind: str, params: dict[str, Any], owner: str, delay_s: float = 0.0
    ) -> JobRecord:
        """Create the job's record (``queued``) and put its id on the queue.

        Args:
            kind: a registered kind (checked by the consumer, which imports the kinds).
            params: JSON parameters of the kind.
            owner: tenant id of the submitter (``api.auth.caller().tenant``).
            delay_s: run no sooner than this many seconds from now (a retry's back-off);
                the record is ``queued`` meanwhile.

        Returns:
            The new record.

        Raises:
            BadInput: ``params`` is not JSON.
        """
        if not isinstance(params, dict):
            raise BadInput("job params must be a JSON object")
        record = JobRecord(
            job_id=new_id(),
            kind=kind,
            owner=owner,
            params=params,
            max_attempts=self.settings.job_max_attempts,
            created_at=time.time(),
            message="queued",
        )
        try:
            record.to_json()
        except (TypeError, ValueError) as exc:
            raise BadInput(f"job params are not JSON: {exc}") from exc
        self.jobs.create(record)  # the record first: a consumer never meets an unknown id
        self.enqueue(record.job_id, delay_s)
        return record

    def enqueue(self, job_id: str, delay_s: float = 0.0) -> None:
        """Put a job id on the queue (again); with ``delay_s`` > 0, Huey's schedule holds it
        until then (the consumer's scheduler moves it to the queue)."""
        if delay_s > 0:
            self._task.schedule(args=(job_id,), delay=delay_s)
        else:
            self._task(job_id)

    def get(self, job_id: str) -> JobRecord:
        """The job's record; a job whose worker died is re-queued or failed first.

        Raises:
            NotFound: no such job.
        """
        record = self.jobs.get(job_id)
        return recover_stale(
            self.jobs, record, timeout_s=self.settings.job_timeout_s, requeue=self.enqueue
        )

    def file(self, job_id: str, name: str) -> bytes:
        """One result file of a job (check the record's ``files`` first)."""
        return self.jobs.get_file(job_id, name)

    def sweep(self) -> int:
        """Recover every stale running job (a consumer calls this periodically).

        Returns:
            How many jobs were re-queued or failed.
        """
        changed = 0
        for job_id in self.jobs.list_ids():
            try:
                record = self.jobs.get(job_id)
            except Exception:  # noqa: BLE001 - one unreadable record must not stop the sweep
                log.warning("job %s: unreadable record", job_id, exc_info=True)
                continue
            if record.finished or record.state == "queued":
                continue
            new = recover_stale(
                self.jobs, record, timeout_s=self.settings.job_timeout_s, requeue=self.enqueue
            )
            changed += new.state != record.state
        return changed

    # --- the consuming side -----------------------------------------------------------
    def _run(self, job_id: str) -> None:
        run_job(
            self.jobs, job_id, settings=self.settings, heartbeat_s=self.settings.job_heartbeat_s
        )

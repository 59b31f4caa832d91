"""Run one attempt of a job: take it, heartbeat, call its kind, store files, then the record.

`run_job` is what the queue's consumer calls with a job id. It moves the record from
``queued`` to ``running`` (compare-and-swap, so only one worker takes an attempt), starts a
heartbeat thread, calls the kind's function with a `JobContext`, uploads the files the
function wrote and only then marks the record ``done`` (or ``failed`` with the error).

A worker that dies leaves a ``running`` record whose heartbeat stops; `recover_stale` (run
by every consumer periodically and by `jobs.JobQueue.get`) re-queues it for another attempt or,
after ``max_attempts``, marks it failed with a message saying so. An attempt that was
superseded that way (its worker was only frozen) notices at its next progress call or at the
end, and stops without writing. A kind that saves checkpoints (`JobContext.save_state`) lets
the next attempt resume where the dead one stopped (the camera-trap batch does).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import SightingError
from jobs.records import JobRecord, JobStore, check_file_name, with_changes
from jobs.registry import get_kind

log = logging.getLogger(__name__)


class Superseded(Exception):
    """This attempt no longer owns the job (it was re-queued or finished elsewhere)."""


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobContext:
    """What a job kind's function gets besides its parameters.

    Attributes:
        job_id: the job's id.
        owner: tenant id of the submitter (check catalog ownership with it).
        attempt: 1 on the first run.
        files_dir: an empty local folder; every file written here (one folder deep at most)
            becomes a result file once the function returns.
        settings: the `core.settings.Settings` of the consumer.
        store: the catalog `Store` (read catalogs, embeddings).
    """

    job_id: str
    owner: str
    attempt: int
    files_dir: Path
    settings: Any
    store: Any
    _report: Callable[[int, int, str], None] = field(repr=False, default=lambda d, t, m: None)
    _check: Callable[[], None] = field(repr=False, default=lambda: None)
    _jobs: JobStore | None = field(repr=False, default=None)

    def progress(self, done: int, total: int = 0, message: str = "") -> None:
        """Report progress (``done`` of ``total``; ``total`` 0 = unknown) and a short message.

        Written to the record at most about once a second (the last call of a burst may be
        dropped; the final state is always written).

        Raises:
            Superseded: the job was taken away from this attempt; the function should let it
                propagate.
        """
        self._report(int(done), int(total), str(message))

    def save_state(self, name: str, data: bytes) -> None:
        """Keep a checkpoint (e.g. the results so far) that a later attempt can resume from.

        Raises:
            Superseded: this attempt no longer owns the job (nothing is written).
        """
        self._check()
        if self._jobs is not None:
            self._jobs.put_state(self.job_id, name, data)

    def load_state(self, name: str) -> bytes | None:
        """The checkpoint an earlier attempt of this job saved under ``name``, or None."""
        return None if self._jobs is None else self._jobs.get_state(self.job_id, name)


class _Attempt:
    """The record-writing side of one running attempt (progress, heartbeat, ownership)."""

    def __init__(self, jobs: JobStore, record: JobRecord, min_interval_s: float = 1.0) -> None:
        self.jobs = jobs
        self.job_id = record.job_id
        self.attempt = record.attempt
        self.worker = record.worker
        self.min_interval_s = min_interval_s
        self._last_write = 0.0
        self._lock = threading.Lock()
        self.lost = False
        self.last_total = 0  # the largest total reported (a finished job shows total/total)
        self._pending: dict[str, Any] = {}  # the latest progress, written with the next write

    def _mine(self, record: JobRecord) -> bool:
        return (
            record.state == "running"
            and record.attempt == self.attempt
            and record.worker == self.worker
        )

    def write(self, **changes: Any) -> None:
        """Change the record if this attempt still owns it, else raise `Superseded`.

        Every write also carries the latest progress reported (so a heartbeat publishes
        progress that the once-a-second limit held back).
        """
        with self._lock:
            if self.lost:
                raise Superseded(self.job_id)
            changes = self._pending | changes

            def change(record: JobRecord) -> JobRecord | None:
                if not self._mine(record):
                    return None
                return with_changes(record, heartbeat_at=time.time(), **changes)

            if self.jobs.update(self.job_id, change) is None:
                self.lost = True
                raise Superseded(self.job_id)
            self._last_write = time.monotonic()

    def progress(self, done: int, total: int, message: str) -> None:
        if self.lost:
            raise Superseded(self.job_id)
        self.last_total = max(self.last_total, total, done)
        self._pending = {"done": done, "total": total, "message": message}
        if time.monotonic() - self._last_write < self.min_interval_s:
            return  # the next heartbeat (or a later call) writes it
        self.write()

    def heartbeat_loop(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            try:
                self.write()
            except Superseded:
                log.warning("job %s: attempt %d was superseded", self.job_id, self.attempt)
                return
            except SightingError as exc:  # store down for a moment: try again next beat
                log.warning("job %s: heartbeat failed: %s", self.job_id, exc.message)


def _take(jobs: JobStore, job_id: str, worker: str) -> JobRecord | None:
    """Move the record queued -> running for this worker; None if it is not queued."""

    def change(record: JobRecord) -> JobRecord | None:
        if record.state != "queued":
            return None
        now = time.time()
        return with_changes(
            record,
            state="running",
            attempt=record.attempt + 1,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
            done=0,
            total=0,
            message="started",
        )

    return jobs.update(job_id, change)


def _collect_files(folder: Path) -> list[tuple[str, Path]]:
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            files.append((check_file_name(name), path))
    return files


def run_job(
    jobs: JobStore,
    job_id: str,
    *,
    settings: Any,
    heartbeat_s: float = 5.0,
    worker: str | None = None,
) -> JobRecord | None:
    """Run one attempt of ``job_id`` if it is queued (the consumer's task body).

    Returns:
        The final record, or None when the job was not queued (taken or finished elsewhere)
        or this attempt was superseded.
    """
    record = _take(jobs, job_id, worker or worker_name())
    if record is None:
        log.info("job %s: not queued any more; skipped", job_id)
        return None
    attempt = _Attempt(jobs, record)
    stop = threading.Event()
    beat = threading.Thread(
        target=attempt.heartbeat_loop, args=(stop, heartbeat_s), daemon=True, name="heartbeat"
    )
    beat.start()
    workdir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-"))
    try:
        fn = get_kind(record.kind)
        ctx = JobContext(
            job_id=job_id,
            owner=record.owner,
            attempt=record.attempt,
            files_dir=workdir,
            settings=settings,
            store=jobs.store,
            _report=attempt.progress,
            _check=attempt.write,  # a heartbeat: proves the attempt still owns the job
            _jobs=jobs,
        )
        result = fn(dict(record.params), ctx) or {}
        files = _collect_files(workdir)
        for name, path in files:  # files first ...
            jobs.put_file(job_id, name, path.read_bytes())
        attempt.write(  # ... the record that names them last
            state="done",
            finished_at=time.time(),
            message="done",
            result=result,
            files=[name for name, _ in files],
            done=max(attempt.last_total, 1),
            total=max(attempt.last_total, 1),
        )
    except Superseded:
        log.warning("job %s: attempt %d superseded; its work is dropped", job_id, record.attempt)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure of a kind fails the job, clearly
        if isinstance(exc, SightingError):
            message = exc.message
        else:
            log.exception("job %s failed", job_id)
            message = f"{type(exc).__name__}: {exc}"
        try:
            attempt.write(state="failed", finished_at=time.time(), message=message)
        except Superseded:
            return None
    finally:
        stop.set()
        shutil.rmtree(workdir, ignore_errors=True)
    return jobs.get(job_id)


def recover_stale(
    jobs: JobStore,
    record: JobRecord,
    *,
    timeout_s: float,
    requeue: Callable[[str], None],
    now: float | None = None,
) -> JobRecord:
    """Re-queue or fail ``record`` if it is running with a heartbeat older than ``timeout_s``.

    Args:
        jobs: the job store.
        record: a record just read.
        timeout_s: heartbeat age after which its worker is taken for dead.
        requeue: puts the job id on the queue again (called after the record is queued).
        now: the current time (tests).

    Returns:
        The record as it is now (unchanged if it was not stale).
    """
    now = time.time() if now is None else now
    if record.state != "running" or now - record.heartbeat_at <= timeout_s:
        return record
    dead = record.worker
    age = now - record.heartbeat_at

    def change(current: JobRecord) -> JobRecord | None:
        if current.state != "running" or current.attempt != record.attempt:
            return None  # someone else recovered it, or it moved on
        if now - current.heartbeat_at <= timeout_s:
            return None
        if current.attempt >= current.max_attempts:
            return with_changes(
                current,
                state="failed",
                finished_at=now,
                message=(
                    f"worker {dead} stopped answering (no heartbeat for {age:.0f} s) on attempt "
                    f"{current.attempt} of {current.max_attempts}; the job was not completed"
                ),
            )
        return with_changes(
            current,
            state="queued",
            message=(
                f"worker {dead} stopped answering (no heartbeat for {age:.0f} s); "
                f"queued again for attempt {current.attempt + 1}"
            ),
        )

    new = jobs.update(record.job_id, change)
    if new is None:
        return jobs.get(record.job_id)
    if new.state == "queued":
        requeue(new.job_id)
    log.warning("job %s: %s", new.job_id, new.message)
    return new

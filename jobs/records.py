"""Job records and result files in the catalog store, readable by every worker and host.

Keys: ``jobs/<job_id>/record.json`` (the `JobRecord`), ``jobs/<job_id>/files/<name>`` (result
files) and ``jobs/<job_id>/state/<name>`` (a running job's checkpoints, read back by the next
attempt after a worker died). A job's files are written FIRST and its record goes to ``done``
LAST, so a record that says ``done`` never names a file that is not there; a record is only
ever changed by compare-and-swap (`Store.put_if`), so two workers (or a worker and the stale-
job sweep) never overwrite each other's change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from catalog.store import Store
from core.errors import BadInput, Conflict, NotFound, StoreUnavailable
from core.retry import compare_and_swap

JobState = Literal["queued", "running", "done", "failed"]
STATES: tuple[str, ...] = ("queued", "running", "done", "failed")
FINISHED: tuple[str, ...] = ("done", "failed")
ROOT = "jobs/"
_JOB_ID = re.compile(r"[a-z0-9]{1,64}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127})?")
_CAS_TRIES = 20


def record_key(job_id: str) -> str:
    """``jobs/<job_id>/record.json``."""
    return f"{ROOT}{check_job_id(job_id)}/record.json"


def file_key(job_id: str, name: str) -> str:
    """``jobs/<job_id>/files/<name>``."""
    return f"{ROOT}{check_job_id(job_id)}/files/{check_file_name(name)}"


def state_key(job_id: str, name: str) -> str:
    """``jobs/<job_id>/state/<name>``."""
    return f"{ROOT}{check_job_id(job_id)}/state/{check_file_name(name)}"


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is 1-64 chars of ``[a-z0-9]``.

    Raises:
        NotFound: any other string (no job can have that id).
    """
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise NotFound(f"no job {job_id!r}")
    return job_id


def check_file_name(name: str) -> str:
    """Return a result file name (``a.csv`` or one folder deep, ``sheets/c0.jpg``).

    Raises:
        BadInput: the name has other characters, more depth, or starts with ``.``.
    """
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        raise BadInput(f"bad job file name {name!r}: [A-Za-z0-9._-], at most one '/'")
    return name


@dataclass(frozen=True)
class JobRecord:
    """One job as the store keeps it (the JSON of ``record.json``).

    Attributes:
        job_id: 12 chars of ``[a-z0-9]``.
        kind: the registered job kind (`jobs.registry.job_kind`), e.g. ``analytics``.
        owner: tenant id of the caller that submitted it (``api.auth.Caller.tenant``).
        params: the kind's parameters (JSON).
        state: ``queued`` -> ``running`` -> ``done`` | ``failed`` (``running`` -> ``queued``
            again when a dead worker's attempt is retried).
        done, total: progress counters of the current step (``total`` 0 = unknown).
        message: what the job is doing now, or why it failed.
        attempt: 1 for the first run, +1 per retry after a worker died.
        max_attempts: attempts before a job whose worker keeps dying is failed.
        created_at, started_at, finished_at, heartbeat_at: seconds since the epoch (UTC);
            0 = not yet.
        worker: ``host:pid`` of the worker running (or that ran) the job.
        result: the kind's JSON summary (``done`` only).
        files: result file names under ``jobs/<id>/files/`` (``done`` only).
    """

    job_id: str
    kind: str
    owner: str
    params: dict[str, Any] = field(default_factory=dict)
    state: JobState = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    attempt: int = 0
    max_attempts: int = 2
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    heartbeat_at: float = 0.0
    worker: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise BadInput(f"job state {self.state!r} is not one of {STATES}")

    @property
    def finished(self) -> bool:
        """Whether the job is ``done`` or ``failed`` (it will not change any more)."""
        return self.state in FINISHED

    def to_json(self) -> bytes:
        """The record as UTF-8 JSON (the one serialiser of a job record)."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> JobRecord:
        """Parse ``record.json``.

        Raises:
            StoreUnavailable: the stored record is not a job record (corrupt store).
        """
        try:
            raw = json.loads(data)
            return cls(**raw)
        except (ValueError, TypeError) as exc:
            raise StoreUnavailable(f"corrupt job record: {exc}") from exc

    def to_public(self) -> dict[str, Any]:
        """The record as the API shows it (``GET /v1/jobs/<id>``): no owner, no params."""
        return {
            "id": self.job_id,
            "kind": self.kind,
            "state": self.state,
            "progress": {"done": self.done, "total": self.total},
            "message": self.message,
            "attempt": self.attempt,
            "created_at": self.created_at,
            "started_at": self.started_at or None,
            "finished_at": self.finished_at or None,
            "heartbeat_at": self.heartbeat_at or None,
            "result": self.result,
            "files": list(self.files),
        }


class JobStore:
    """Read and change job records and files in a `Store` (compare-and-swap only)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, record: JobRecord) -> JobRecord:
        """Write a new record; raises `Conflict` if the id exists."""
        self.store.put_if(record_key(record.job_id), record.to_json(), expected_etag=None)
        return record

    def get(self, job_id: str) -> JobRecord:
        """The record of ``job_id``.

        Raises:
            NotFound: no such job.
        """
        return self.get_with_etag(job_id)[0]

    def get_with_etag(self, job_id: str) -> tuple[JobRecord, str]:
        """The record and its etag (for `update`)."""
        try:
            data, etag = self.store.get_with_etag(record_key(job_id))
        except NotFound:
            raise NotFound(f"no job {job_id!r}") from None
        return JobRecord.from_json(data), etag

    def update(
        self, job_id: str, change: Callable[[JobRecord], JobRecord | None]
    ) -> JobRecord | None:
        """Apply ``change`` to the fresh record and write it if nobody wrote in between.

        Args:
            job_id: the job.
            change: gets the current record, returns the new one, or None to write nothing
                (the change no longer applies, e.g. another worker took the job).

        Returns:
            The record written, or None when ``change`` declined.

        Raises:
            Conflict: lost the race ``_CAS_TRIES`` times in a row.
        """

        def step(record: JobRecord) -> tuple[bytes, JobRecord] | None:
            new = change(record)
            return None if new is None else (new.to_json(), new)

        return compare_and_swap(
            lambda: self.get_with_etag(job_id),
            step,
            lambda data, etag: self.store.put_if(record_key(job_id), data, expected_etag=etag),
            tries=_CAS_TRIES,
            pause=lambda attempt: 0.01 * (attempt + 1),
            gave_up=lambda: Conflict(f"job {job_id!r} record kept changing; gave up"),
        )

    def put_file(self, job_id: str, name: str, data: bytes) -> None:
        """Write one result file (before the record names it)."""
        self.store.put(file_key(job_id, name), data)

    def get_file(self, job_id: str, name: str) -> bytes:
        """Read one result file.

        Raises:
            NotFound: the job has no such file.
        """
        try:
            return self.store.get(file_key(job_id, name))
        except NotFound:
            raise NotFound(f"job {job_id!r} has no file {name!r}") from None

    def put_state(self, job_id: str, name: str, data: bytes) -> None:
        """Write one checkpoint of a running job (replaces the last one of that name)."""
        self.store.put(state_key(job_id, name), data)

    def get_state(self, job_id: str, name: str) -> bytes | None:
        """One checkpoint of a job, or None when no attempt wrote it."""
        try:
            return self.store.get(state_key(job_id, name))
        except NotFound:
            return None

    def list_ids(self) -> list[str]:
        """Every job id in the store."""
        return self.store.list_children(ROOT)


def with_changes(record: JobRecord, **changes: Any) -> JobRecord:
    """A copy of ``record`` with ``changes`` (dataclasses.replace, validated)."""
    return replace(record, **changes)

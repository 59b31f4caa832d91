"""The task queue end to end: real consumer processes, SQLite and Redis, a killed worker."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from catalog.local_store import LocalStore
from core.errors import BadInput, NotFound
from jobs import JobQueue
from jobs.records import JobRecord, JobStore, file_key
from jobs.runner import JobContext, Superseded, _Attempt, recover_stale, run_job
from tests.jobs.conftest import Consumers, free_port, job_settings, wait_for


def finished(record: JobRecord) -> bool:
    return record.finished


def test_job_runs_to_done_with_files(tmp_path: Path, consumers: Consumers) -> None:
    settings = job_settings(tmp_path / "store")
    queue = JobQueue(settings)
    record = queue.submit("test.count", {"n": 5}, owner="alice")
    assert (record.state, record.attempt, record.files) == ("queued", 0, [])
    proc = consumers.start(settings)
    done = wait_for(queue, record.job_id, finished)
    assert done.state == "done", (done, consumers.logs())
    assert (done.done, done.total, done.attempt, done.owner) == (5, 5, 1, "alice")
    assert done.files == ["count.txt", "parts/pid.txt"]
    assert done.result == {"n": 5, "pid": proc.pid, "attempt": 1}
    assert done.worker.endswith(f":{proc.pid}")
    assert queue.file(record.job_id, "count.txt") == b"0\n1\n2\n3\n4"
    assert done.started_at >= done.created_at and done.finished_at >= done.started_at


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("test.fail", {"what": "that"}, "cannot do that"),  # a typed error: its message
        ("test.bug", {}, "ZeroDivisionError: division by zero"),  # a bug: type and text
        ("no.such.kind", {}, "unknown job kind 'no.such.kind'"),  # kind not registered
    ],
)
def test_failed_job_says_why_and_publishes_nothing(
    tmp_path: Path, consumers: Consumers, kind: str, params: dict, message: str
) -> None:
    settings = job_settings(tmp_path / "store")
    queue = JobQueue(settings)
    consumers.start(settings)
    record = queue.submit(kind, params, owner="alice")
    failed = wait_for(queue, record.job_id, finished)
    assert failed.state == "failed"
    assert message in failed.message
    assert failed.files == []
    assert not queue.jobs.store.exists(file_key(record.job_id, "half.csv"))


def test_killed_worker_job_runs_again_on_another(tmp_path: Path, consumers: Consumers) -> None:
    settings = job_settings(tmp_path / "store")
    queue = JobQueue(settings)
    first = consumers.start(settings)
    # attempt 1 crawls (30 s a step), so the kill lands mid-job; attempt 2 is quick
    record = queue.submit("test.count", {"n": 4, "first_pause": 30, "pause": 0.05}, "alice")
    running = wait_for(queue, record.job_id, lambda r: r.state == "running")
    assert running.attempt == 1
    consumers.kill(first)
    time.sleep(0.5)
    assert queue.get(record.job_id).state == "running"  # heartbeat not yet stale
    second = consumers.start(settings)
    done = wait_for(queue, record.job_id, finished)
    assert done.state == "done", (done, consumers.logs())
    assert done.attempt == 2 and done.result["pid"] == second.pid
    assert done.files == ["count.txt", "parts/pid.txt"]


def test_killed_worker_fails_the_job_after_its_last_attempt(
    tmp_path: Path, consumers: Consumers
) -> None:
    settings = job_settings(tmp_path / "store", job_max_attempts=1)
    queue = JobQueue(settings)
    worker = consumers.start(settings)
    record = queue.submit("test.count", {"n": 4, "first_pause": 30}, "alice")
    wait_for(queue, record.job_id, lambda r: r.state == "running")
    consumers.kill(worker)
    # no consumer left: reading the job is enough to notice its worker is gone
    failed = wait_for(queue, record.job_id, finished, timeout_s=10)
    assert failed.state == "failed"
    assert "stopped answering" in failed.message and "attempt 1 of 1" in failed.message
    assert failed.files == []


def test_stale_running_job_is_requeued_once(tmp_path: Path) -> None:
    jobs = JobStore(LocalStore(tmp_path))
    now = 1000.0
    rec = JobRecord("abc", "test.count", "alice", state="running", attempt=1, heartbeat_at=now)
    jobs.create(rec)
    requeued: list[str] = []
    fresh = recover_stale(jobs, rec, timeout_s=10, requeue=requeued.append, now=now + 5)
    assert fresh.state == "running" and requeued == []  # heartbeat recent: untouched
    stale = recover_stale(jobs, rec, timeout_s=10, requeue=requeued.append, now=now + 11)
    assert (stale.state, stale.attempt, requeued) == ("queued", 1, ["abc"])
    again = recover_stale(jobs, rec, timeout_s=10, requeue=requeued.append, now=now + 12)
    assert again.state == "queued" and requeued == ["abc"]  # a second sweeper does nothing


def test_superseded_attempt_cannot_write(tmp_path: Path) -> None:
    jobs = JobStore(LocalStore(tmp_path))
    jobs.create(JobRecord("abc", "test.count", "alice", state="running", attempt=1, worker="w"))
    attempt = _Attempt(jobs, jobs.get("abc"), min_interval_s=0)
    attempt.write(done=1)
    jobs.update("abc", lambda r: JobRecord(**{**r.__dict__, "state": "queued"}))
    with pytest.raises(Superseded):
        attempt.write(state="done")
    assert jobs.get("abc").state == "queued"


def test_heartbeats_publish_progress_the_rate_limit_held_back(tmp_path: Path) -> None:
    """Found by the camera-trap job: heartbeats more often than once a second used to reset
    the progress limit, so a running job showed 0 done until it finished."""
    jobs = JobStore(LocalStore(tmp_path))
    jobs.create(JobRecord("abc", "test.count", "alice", state="running", attempt=1, worker="w"))
    attempt = _Attempt(jobs, jobs.get("abc"), min_interval_s=60)
    attempt.write()  # a heartbeat
    attempt.progress(3, 10, "step 3")  # held back: the last write was just now
    assert jobs.get("abc").done == 0
    attempt.write()  # the next heartbeat carries it
    record = jobs.get("abc")
    assert (record.done, record.total, record.message) == (3, 10, "step 3")
    attempt.write(state="done", done=10, total=10)  # explicit values win
    assert (jobs.get("abc").done, jobs.get("abc").state) == (10, "done")


def test_checkpoints_outlive_the_attempt_and_need_ownership(tmp_path: Path) -> None:
    jobs = JobStore(LocalStore(tmp_path))
    jobs.create(JobRecord("abc", "test.count", "alice", state="running", attempt=1, worker="w"))
    attempt = _Attempt(jobs, jobs.get("abc"), min_interval_s=0)
    ctx = JobContext(
        "abc", "alice", 1, tmp_path, None, jobs.store, _check=attempt.write, _jobs=jobs
    )
    assert ctx.load_state("rows.jsonl") is None
    ctx.save_state("rows.jsonl", b"a\n")
    assert ctx.load_state("rows.jsonl") == b"a\n"
    jobs.update("abc", lambda r: JobRecord(**{**r.__dict__, "state": "queued"}))  # taken away
    with pytest.raises(Superseded):
        ctx.save_state("rows.jsonl", b"stale\n")
    assert jobs.get_state("abc", "rows.jsonl") == b"a\n"


def test_run_job_skips_a_job_that_is_not_queued(tmp_path: Path) -> None:
    jobs = JobStore(LocalStore(tmp_path))
    jobs.create(JobRecord("abc", "test.count", "alice", state="done"))
    assert run_job(jobs, "abc", settings=None) is None
    assert jobs.get("abc").state == "done"


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="QUEUE_URL"):
        JobQueue(job_settings(tmp_path, queue_url="amqp://x"))
    queue = JobQueue(job_settings(tmp_path))
    with pytest.raises(NotFound):
        queue.get("nosuchjob")
    with pytest.raises(NotFound):
        queue.get("../etc")
    with pytest.raises(BadInput, match="JSON"):
        queue.submit("test.count", {"x": object()}, "alice")


@pytest.fixture()
def redis_url(tmp_path: Path):
    """A real redis-server on a free loopback port, stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def test_consumers_on_several_hosts_share_the_work_through_redis(
    tmp_path: Path, consumers: Consumers, redis_url: str
) -> None:
    # two consumers (two "hosts") on one Redis queue and one store
    settings = job_settings(tmp_path / "store", queue_url=redis_url)
    a, b = consumers.start(settings), consumers.start(settings)
    queue = JobQueue(settings)
    ids = [queue.submit("test.count", {"n": 4, "pause": 0.25}, "alice").job_id for _ in range(6)]
    records = [wait_for(queue, job_id, finished, timeout_s=60) for job_id in ids]
    assert all(r.state == "done" for r in records), consumers.logs()
    assert {r.result["pid"] for r in records} == {a.pid, b.pid}
    assert all(r.attempt == 1 for r in records)  # each job ran exactly once

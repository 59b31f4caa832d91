"""Fixtures for the queue's tests: settings of a fresh store, real consumer processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.settings import REPO_ROOT, Settings
from jobs import JobQueue, JobRecord


def job_settings(data_dir: Path, **overrides) -> Settings:
    """Settings of a local store in ``data_dir`` with fast heartbeats (no `.env`)."""
    values = dict(
        data_dir=data_dir,
        job_heartbeat_s=0.3,
        job_timeout_s=2.0,
        job_modules=["tests.jobs.kinds"],
    )
    return Settings(_env_file=None, **(values | overrides))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess the same queue and store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTING_")}
    env |= {
        "SIGHTING_DATA_DIR": str(settings.data_dir),
        "SIGHTING_QUEUE_URL": settings.queue_url,
        "SIGHTING_JOB_HEARTBEAT_S": str(settings.job_heartbeat_s),
        "SIGHTING_JOB_TIMEOUT_S": str(settings.job_timeout_s),
        "SIGHTING_JOB_MAX_ATTEMPTS": str(settings.job_max_attempts),
        "SIGHTING_JOB_MODULES": ",".join(settings.job_modules),
        "SIGHTING_THREADS": "1",
        # the models a kind may load (the offline set of tests.conftest.offline_settings)
        "SIGHTING_WEIGHTS_DIR": str(settings.weights_dir),
        "SIGHTING_DETECTOR": settings.detector,
        "SIGHTING_EMBEDDER": settings.embedder,
        "SIGHTING_VERIFIER": settings.verifier,
        "SIGHTING_DEVICE": settings.device,
    }
    return env


class Consumers:
    """Start and stop real ``python -m jobs worker`` processes."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, settings: Settings, workers: int = 1) -> subprocess.Popen:
        log = open(self.log_dir / f"consumer-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs", "worker", "--workers", str(workers)],
            cwd=REPO_ROOT,
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL: the worker dies mid-job without any chance to clean up."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # immediate shutdown (SIGTERM is graceful)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture()
def consumers(tmp_path: Path) -> Iterator[Consumers]:
    """Consumer processes, stopped (by their pid) at the end of the test."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    c = Consumers(log_dir)
    yield c
    c.stop_all()


def wait_for(
    queue: JobQueue, job_id: str, until: Callable[[JobRecord], bool], timeout_s: float = 30.0
) -> JobRecord:
    """Poll ``queue.get`` until ``until(record)`` or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    record = queue.get(job_id)
    while not until(record):
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} stuck: {record}")
        time.sleep(0.1)
        record = queue.get(job_id)
    return record


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

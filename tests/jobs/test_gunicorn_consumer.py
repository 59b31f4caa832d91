"""The README's one run command (gunicorn -c gunicorn.conf.py) also runs the job consumer."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from jobs import JobQueue
from tests.deploy.conftest import alive, children, server_env
from tests.jobs.conftest import free_port, job_settings, wait_for

GUNICORN = Path(sys.executable).parent / "gunicorn"


def consumer_of(master: int) -> int | None:
    """The pid of the master's child that runs ``python -m jobs worker``."""
    for pid in children(master):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"jobs" in cmdline and b"worker" in cmdline:
            return pid
    return None


@pytest.mark.slow  # a real gunicorn
def test_gunicorn_starts_and_stops_the_consumer(tmp_path: Path) -> None:
    settings = job_settings(tmp_path / "store")
    env = server_env(tmp_path) | {
        "SIGHTING_JOB_WORKERS": "1",
        "SIGHTING_JOB_MODULES": "tests.jobs.kinds",
        "SIGHTING_DATA_DIR": str(settings.data_dir),
        "SIGHTING_WORKERS": "1",
    }
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        master = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{free_port()}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while (consumer := consumer_of(master.pid)) is None:
            if time.monotonic() > deadline or master.poll() is not None:
                pytest.fail(f"no job consumer under gunicorn:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        queue = JobQueue(settings)
        record = queue.submit("test.count", {"n": 2, "pause": 0}, owner="local")
        done = wait_for(queue, record.job_id, lambda r: r.finished, timeout_s=60)
        assert done.state == "done" and done.result["pid"] == consumer
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=60)
    assert not alive(consumer)  # stopped with gunicorn

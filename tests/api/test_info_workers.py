"""``/v1/info`` reports the worker processes serving, not the setting: under a real gunicorn
started with ``--workers 1`` while ``SIGHTING_WORKERS`` says 3, then grown by one (TTIN)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests

from core.settings import REPO_ROOT
from service.health import serving_workers
from tests.deploy.conftest import (
    GUNICORN,
    KEY_A,
    children,
    free_port,
    server_env,
    stop_process,
    wait_workers_ready,
)


def test_outside_gunicorn_the_setting_is_answered() -> None:
    assert serving_workers(3) == 3  # pytest's parent is no gunicorn master


def _info_workers(url: str) -> int:
    r = requests.get(
        f"{url}/v1/info", headers={"X-API-Key": KEY_A, "Connection": "close"}, timeout=60
    )
    assert r.status_code == 200, r.text
    return r.json()["workers"]


@pytest.mark.slow
def test_info_counts_gunicorns_live_workers(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "gunicorn.log"
    cmd = [str(GUNICORN), "-c", "gunicorn.conf.py", "--bind", url[len("http://") :]]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--workers", "1"],
            cwd=REPO_ROOT,
            env=server_env(tmp_path, SIGHTING_WORKERS="3"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        first = wait_workers_ready(url, proc.pid, 1, log)
        assert _info_workers(url) == 1
        os.kill(proc.pid, signal.SIGTTIN)  # one more worker
        wait_workers_ready(url, proc.pid, 2, log)
        deadline = time.monotonic() + 60
        while len(children(proc.pid)) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(children(proc.pid) - first) == 1
        assert _info_workers(url) == 2
    finally:
        stop_process(proc)

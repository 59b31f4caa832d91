"""A real gunicorn (``gunicorn -c gunicorn.conf.py``) as a subprocess, for deploy tests.

The module-scoped `server` fixture starts 2 workers with the offline models, a local store, a
pidfile and the Prometheus folder in a temporary folder, two tenant keys and one admin key;
it waits until both workers answer ``/readyz`` and always stops gunicorn afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from core.settings import REPO_ROOT
from tests.conftest import DATA, WEIGHTS

GUNICORN = REPO_ROOT / ".venv" / "bin" / "gunicorn"
WORKER_HEADER = "X-Sighting-Worker"
KEY_A, KEY_B, KEY_ADMIN = "tenant-a-key", "tenant-b-key", "admin-key"
READY_TIMEOUT_S = 120.0
MAX_PAUSE_S = 30.0  # longest a ready worker stays paused while the others start
GROCERY = DATA / "grocery"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a gunicorn under ``root``: offline models, local store, keys."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGHTING_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env |= {
        "SIGHTING_WEIGHTS_DIR": str(WEIGHTS),
        "SIGHTING_DETECTOR": "yolov5n",
        "SIGHTING_EMBEDDER": "mobilenet_v2",
        "SIGHTING_VERIFIER": "aliked_lightglue",
        "SIGHTING_DEVICE": "cpu",
        "SIGHTING_DATA_DIR": str(root / "store"),
        "SIGHTING_PIDFILE": str(root / "run" / "sighting.pid"),
        "SIGHTING_LOG_DIR": str(root / "logs"),
        "SIGHTING_SYNC_INTERVAL_S": "0.5",
        "SIGHTING_API_KEYS": f"{KEY_A},{KEY_B}",
        "SIGHTING_ADMIN_KEYS": KEY_ADMIN,
        "YOLO_CONFIG_DIR": str(root / "yolo"),
        "SIGHTING_JOB_WORKERS": "0",  # no job consumer: children(master) are the web workers
    }
    return env | extra


def parent_of(pid: int) -> int | None:
    """The parent pid of a live (non-zombie) process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid ...
    return None if fields[0] in ("Z", "X") else int(fields[1])


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as dead)."""
    return parent_of(pid) is not None


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (gunicorn's workers when ``pid`` is the master)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid:
            found.add(int(entry.name))
    return found


def log_tail(path: Path, chars: int = 6000) -> str:
    """The end of a log file (for failure messages)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"<no log at {path}: {exc}>"


def pause(pid: int, paused: list[int]) -> None:
    """Stop worker ``pid`` (SIGSTOP: it accepts no connection) and note it in ``paused``."""
    os.kill(pid, signal.SIGSTOP)
    paused.append(pid)


def resume(paused: list[int]) -> None:
    """Continue (SIGCONT) every worker in ``paused`` that still lives, and empty the list."""
    for pid in paused:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    paused.clear()


def wait_workers_ready(
    url: str,
    master: int,
    workers: int,
    log: Path,
    exclude: set[int] = frozenset(),
    timeout_s: float = READY_TIMEOUT_S,
) -> set[int]:
    """Poll ``/readyz`` (a new connection each time) until ``workers`` pids answered 200.

    Only pids that are live children of ``master`` and not in ``exclude`` count. Each worker
    that answered is paused (SIGSTOP, as in `answer_from_each_worker`) so that the next polls
    reach the others, for at most ``MAX_PAUSE_S`` at a time (gunicorn's master replaces a
    worker silent for its 90 s timeout), and continued before this returns. Fails the test
    with the gunicorn log when the master dies or ``READY_TIMEOUT_S`` passes.
    """
    seen: set[int] = set()
    paused: list[int] = []
    paused_at = 0.0
    deadline = time.monotonic() + timeout_s

    try:
        while time.monotonic() < deadline:
            if paused and time.monotonic() - paused_at > MAX_PAUSE_S:
                resume(paused)
            if not alive(master):
                pytest.fail(f"gunicorn (pid {master}) exited while starting:\n{log_tail(log)}")
            try:
                r = requests.get(url + "/readyz", headers={"Connection": "close"}, timeout=10)
                if r.status_code == 200:
                    pid = int(r.headers[WORKER_HEADER])
                    if pid not in exclude:
                        seen.add(pid)
                    if pid not in paused:
                        paused_at = paused_at if paused else time.monotonic()
                        pause(pid, paused)
            except requests.RequestException:
                pass
            seen &= children(master)
            if len(seen) >= workers:
                return seen
            time.sleep(0.2)
    finally:
        resume(paused)
    pytest.fail(f"gunicorn workers not ready in {timeout_s:.0f} s:\n{log_tail(log)}")


def answer_from_each_worker(
    srv: Server, send: Callable[[], requests.Response]
) -> dict[int, requests.Response]:
    """Call ``send`` (a request on a new connection) until every worker has answered once.

    The kernel hands a new connection to whichever idle worker accepts first, and on a busy
    machine that can be the same one every time. So each worker that answered is paused
    (SIGSTOP) until the others have: the next connection must go to a running worker. All
    paused workers are continued (SIGCONT) before this returns or raises.
    """
    workers = srv.workers()
    answers: dict[int, requests.Response] = {}
    paused: list[int] = []
    try:
        while len(answers) < len(workers):
            r = send()
            pid = int(r.headers[WORKER_HEADER])
            assert pid in workers and pid not in answers, f"{pid} answered; paused {paused}"
            answers[pid] = r
            if len(answers) < len(workers):
                pause(pid, paused)
    finally:
        resume(paused)
    return answers


def stop_process(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; a no-op when it already exited."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Server:
    """A running gunicorn: its base URL, master process, and files."""

    proc: subprocess.Popen
    url: str
    root: Path
    log: Path

    @property
    def master(self) -> int:
        """The gunicorn master's pid (``gunicorn`` execs Python directly)."""
        return self.proc.pid

    @property
    def pidfile(self) -> Path:
        """gunicorn's pidfile (SIGHTING_PIDFILE)."""
        return self.root / "run" / "sighting.pid"

    def workers(self) -> set[int]:
        """The live worker pids."""
        return children(self.master)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn with 2 workers on a free 127.0.0.1 port, ready on both workers."""
    if not GUNICORN.is_file():
        pytest.fail(f"{GUNICORN} is missing: install requirements.txt into .venv")
    root = tmp_path_factory.mktemp("gunicorn")
    url = f"http://127.0.0.1:{free_port()}"
    log = root / "gunicorn.log"
    cmd = [str(GUNICORN), "-c", "gunicorn.conf.py", "--bind", url[len("http://") :]]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd + ["--workers", "2"],
            cwd=REPO_ROOT,
            env=server_env(root),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Server(proc, url, root, log)
    try:
        wait_workers_ready(url, proc.pid, 2, log)
        yield srv
    finally:
        stop_process(proc)

"""Milvus Lite for tests: an engine on a fresh ``.db`` folder, and a Lite server process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from matching.index import IndexConfig


def lite_config(folder: Path, **overrides) -> IndexConfig:
    """Index settings of a Milvus Lite database in ``folder`` (created on first use)."""
    values = dict(backend="milvus", milvus_uri=str(folder / "milvus.db"), milvus_timeout_s=20.0)
    values.update(overrides)
    return IndexConfig(**values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lite_server(data_dir: Path, port: int, timeout_s: float = 60.0) -> subprocess.Popen:
    """``milvus-lite server`` on 127.0.0.1:port (several clients share it), ready when returned."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "milvus_lite",
            "server",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"milvus-lite server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"milvus-lite server not listening on {port} after {timeout_s} s")

"""Readiness and the service's configuration as a client sees it (``/v1/info``)."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import SightingError
from core.kinds import KINDS
from service.access import Caller
from service.state import SightingState


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return found


def serving_workers(configured: int) -> int:
    """How many worker processes serve now: under gunicorn, the master's live children that
    are its workers (forked from it: the same command line; the job consumer it starts is
    another program), whatever ``--workers`` or the setting said. Elsewhere (a test client, a
    development server) no server says, and the setting ``configured`` is answered."""
    master = os.getppid()
    try:
        command = Path(f"/proc/{master}/cmdline").read_bytes()
    except OSError:
        return configured
    if b"gunicorn" not in command:
        return configured
    workers = 0
    for pid in _children(master):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == command:
                workers += 1
        except OSError:
            continue
    return max(workers, 1)  # this one serves


def readiness(s: SightingState) -> dict:
    """``{"models": bool, "store": bool[, "store_error": str]}``: ready when both are true."""
    checks: dict = {"models": s.pipeline is not None}
    try:
        s.repository.store.check()
        checks["store"] = True
    except SightingError as exc:
        checks["store"] = False
        checks["store_error"] = exc.message
    return checks


def service_info(s: SightingState, caller: Caller) -> dict:
    """Workers, the models each catalog kind runs (detector, embedder, verifier, score
    threshold) and the limits."""
    pipeline, settings = s.pipeline, s.settings
    verifier = pipeline.verifier.fingerprint if pipeline.verifier is not None else None
    return {
        "workers": serving_workers(settings.workers),
        "worker_threads": settings.worker_threads,
        "worker": os.getpid(),
        "storage": settings.storage,
        "auth": settings.auth_enabled,
        "admin": caller.admin,
        "kinds": {
            kind: {
                "detector": settings.detector,
                "embedder": pipeline.embedder_for(kind).fingerprint,
                "verifier": verifier,
                "threshold": pipeline.calibration(kind).threshold,
                # which runtime and precision each stage runs, and why not the one asked for
                "runtimes": {
                    "detector": pipeline.detector.runtime.as_dict(),
                    "embedder": pipeline.embedder_for(kind).runtime.as_dict(),
                },
            }
            for kind in KINDS
        },
        "limits": {
            "max_top_k": settings.max_top_k,
            "max_body_bytes": settings.max_body_bytes,
            "max_image_pixels": settings.max_image_pixels,
        },
    }

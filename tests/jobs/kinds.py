"""Job kinds for the queue's tests (loaded with SIGHTING_JOB_MODULES=tests.jobs.kinds)."""

from __future__ import annotations

import os
import time

from core.errors import BadInput
from jobs import JobContext, job_kind


@job_kind("test.count")
def count(params: dict, ctx: JobContext) -> dict:
    """Count to ``n`` (``pause`` s a step; ``first_pause`` s a step on attempt 1), then write
    ``count.txt`` and ``parts/pid.txt``."""
    n = int(params.get("n", 3))
    pause = float(params.get("pause", 0.05))
    if ctx.attempt == 1 and "first_pause" in params:
        pause = float(params["first_pause"])
    for i in range(n):
        ctx.progress(i, n, f"step {i}")
        time.sleep(pause)
    (ctx.files_dir / "count.txt").write_text("\n".join(str(i) for i in range(n)))
    (ctx.files_dir / "parts").mkdir()
    (ctx.files_dir / "parts" / "pid.txt").write_text(str(os.getpid()))
    return {"n": n, "pid": os.getpid(), "attempt": ctx.attempt}


@job_kind("test.fail")
def fail(params: dict, ctx: JobContext) -> dict:
    """Fail with a clear message after writing a file that must never be published."""
    (ctx.files_dir / "half.csv").write_text("a,b\n1,")
    raise BadInput(f"cannot do {params.get('what', 'it')}")


@job_kind("test.bug")
def bug(params: dict, ctx: JobContext) -> dict:
    """Fail with an unexpected exception."""
    return {"x": 1 / 0}

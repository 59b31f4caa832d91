"""The consumer: a process that runs queued jobs (``python -m jobs worker``).

gunicorn.conf.py starts one beside the web workers (``SIGHTING_JOB_WORKERS`` threads; 0
starts none, for hosts that only serve HTTP); other hosts run ``python -m jobs worker``
against the same ``SIGHTING_QUEUE_URL`` (Redis) and store (S3). Models and other heavy
libraries load here, inside the job functions, never in gunicorn's master.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from core.settings import Settings
from jobs.queue import JobQueue
from jobs.registry import kinds, load_modules

log = logging.getLogger(__name__)


def _sweep_loop(
    queue: JobQueue, interval_s: float, stop: threading.Event, parent_pid: int | None
) -> None:
    while not stop.wait(interval_s):
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("parent %d is gone (gunicorn killed?): stopping the consumer", parent_pid)
            os.kill(os.getpid(), signal.SIGTERM)  # graceful: running jobs finish
            return
        try:
            queue.sweep()
        except Exception:  # noqa: BLE001 - the store may be down for a while; keep sweeping
            log.warning("stale-job sweep failed", exc_info=True)


def run_consumer(
    settings: Settings, workers: int | None = None, parent_pid: int | None = None
) -> None:
    """Import the job kinds, then consume the queue until SIGINT/SIGTERM.

    torch is not imported here (core.runtime imports it): a job kind that runs models calls
    ``core.runtime.prepare_environment()`` itself, in the consumer process.

    Args:
        settings: queue URL, store, job_* settings.
        workers: threads running jobs (default ``settings.job_workers``, at least 1).
        parent_pid: stop when this process (gunicorn's master) is no longer the parent.
    """
    load_modules(settings.job_modules)
    queue = JobQueue(settings)
    n = max(1, workers if workers is not None else settings.job_workers)
    log.info("job consumer: %d worker(s), kinds %s", n, ", ".join(kinds()) or "none")
    stop = threading.Event()
    try:
        queue.sweep()  # jobs a dead consumer left running
    except Exception:  # noqa: BLE001
        log.warning("stale-job sweep failed", exc_info=True)
    threading.Thread(
        target=_sweep_loop,
        args=(queue, max(1.0, settings.job_heartbeat_s), stop, parent_pid),
        daemon=True,
        name="job-sweep",
    ).start()
    consumer = queue.huey.create_consumer(
        workers=n, worker_type="thread", periodic=False, max_delay=1.0, graceful_signal="TERM"
    )
    try:
        consumer.run()
    finally:
        stop.set()

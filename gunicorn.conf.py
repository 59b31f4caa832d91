"""gunicorn settings for Sighting: ``gunicorn -c gunicorn.conf.py`` starts the service.

Every value comes from the SIGHTING_* settings (environment or .env; see .env.example), and
command-line options (e.g. ``--bind``) override them. Models load in each worker, never in
the master: ``preload_app`` stays off (torch after fork deadlocks; CUDA cannot be
re-initialised in a forked child).
"""

import os
import shutil

from core.settings import Settings

_settings = Settings()

wsgi_app = "api:create_app()"
bind = _settings.bind
workers = _settings.workers
worker_class = "gthread"
threads = _settings.worker_threads
timeout = 90
graceful_timeout = 30
preload_app = False
daemon = _settings.daemon
pidfile = str(_settings.pidfile)
_settings.pidfile.parent.mkdir(parents=True, exist_ok=True)
# gunicorn's control socket (gunicornc) beside the pidfile: its default, one path per user
# (~/.gunicorn/gunicorn.ctl), would be taken over by any second instance on the machine
control_socket = str(_settings.pidfile.parent / "gunicorn.ctl")
if daemon:
    _settings.log_dir.mkdir(parents=True, exist_ok=True)
    accesslog = str(_settings.log_dir / "access.log")
    errorlog = str(_settings.log_dir / "error.log")
else:
    accesslog = "-"
    errorlog = "-"
loglevel = "info"
capture_output = True

# torch threads per worker: share the cores between workers unless set explicitly
if not _settings.threads:
    os.environ["SIGHTING_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, workers)))

# Prometheus: every worker writes its samples here; /metrics aggregates them
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(_settings.pidfile.parent / "prometheus")
)


def on_starting(server):
    """Empty the metrics folder of an earlier run."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker):
    """Drop a dead worker's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# The job consumer (jobs/): a separate process beside the web workers, started once gunicorn
# is ready and stopped when it exits; SIGHTING_JOB_WORKERS=0 starts none (run
# `python -m jobs worker` on other hosts). Started with exec, not fork: nothing of the master.
_consumer = None


def when_ready(server):
    """Start the job consumer (``python -m jobs worker``)."""
    global _consumer
    if _settings.job_workers > 0:
        import subprocess
        import sys

        _consumer = subprocess.Popen(
            [sys.executable, "-m", "jobs", "worker", "--workers", str(_settings.job_workers)]
            + ["--parent-pid", str(os.getpid())],
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
        server.log.info("job consumer started (pid %s)", _consumer.pid)


def on_exit(server):
    """Stop the job consumer (SIGTERM: it finishes nothing half-written; see jobs/runner.py)."""
    if _consumer is not None and _consumer.poll() is None:
        _consumer.terminate()
        try:
            _consumer.wait(timeout=graceful_timeout)
        except Exception:  # noqa: BLE001 - a consumer that will not stop is killed
            _consumer.kill()

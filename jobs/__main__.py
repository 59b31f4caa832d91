"""``python -m jobs worker`` runs a job consumer; ``python -m jobs show ID`` prints a record."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from core import cli
from core.errors import SightingError


@cli.command
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        epilog=cli.EXIT_STATUS,
        prog="python -m jobs",
        description="Sighting's task queue (settings: SIGHTING_QUEUE_URL, SIGHTING_JOB_*).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    work = sub.add_parser("worker", help="consume the queue until SIGTERM/SIGINT")
    work.add_argument("--workers", type=int, default=None, help="threads (SIGHTING_JOB_WORKERS)")
    work.add_argument(
        "--parent-pid", type=int, default=None, help="stop when this process is gone (gunicorn)"
    )
    show = sub.add_parser("show", help="print a job's record as JSON")
    show.add_argument("job_id")
    args = parser.parse_args(argv)

    from core.settings import get_settings

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s jobs %(levelname)s %(message)s")
    if args.command == "worker":
        from jobs.worker import run_consumer

        run_consumer(settings, args.workers, args.parent_pid)
        return 0
    from jobs.queue import JobQueue

    try:
        record = JobQueue(settings).get(args.job_id)
    except SightingError as exc:
        return cli.report(exc)
    print(json.dumps(record.to_public(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

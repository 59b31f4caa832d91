"""Prometheus metrics, correct under several gunicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py sets and empties it at start), every
worker writes its samples to that folder and ``/metrics`` aggregates all of them, whichever
worker answers; without it (a single process, the tests) the default registry is used.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "sighting_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
LATENCY = Histogram(
    "sighting_request_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 90),
)
STAGE = Histogram(
    "sighting_stage_seconds",
    "pipeline stage time per request",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MATCHES = Counter("sighting_matches_total", "matches returned, by verified flag", ["verified"])

if TYPE_CHECKING:
    from matching.result import FrameResult


def observe_stages(timings: dict[str, float]) -> None:
    """Record pipeline stage times (seconds)."""
    for stage, seconds in timings.items():
        STAGE.labels(stage).observe(seconds)


def count_matches(result: FrameResult) -> None:
    """Count the matches a frame's answer returns, by their verified flag."""
    for matches in result.matches:
        for m in matches:
            MATCHES.labels(str(m.verified).lower()).inc()


def init_metrics(app: Flask) -> None:
    """Time every request and count it by route template and status."""

    @app.before_request
    def _start() -> None:
        g.metrics_start = time.perf_counter()

    @app.after_request
    def _count(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        if "metrics_start" in g:
            LATENCY.labels(route).observe(time.perf_counter() - g.metrics_start)
        return response


def render() -> Response:
    """The Prometheus text exposition of every worker's metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return Response(payload, mimetype=CONTENT_TYPE_LATEST)

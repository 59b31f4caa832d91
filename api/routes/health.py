"""Liveness, readiness, metrics and the service's configuration (``/v1/info``)."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.auth import caller
from api.metrics import render
from api.schemas import Alive, Ready, binary, v1_doc
from api.state import state
from service.health import readiness, service_info

bp = APIBlueprint("health", __name__, tag="Health")


@bp.get("/healthz")
@bp.output(Alive)
@bp.doc(operation_id="healthz")
def healthz():
    """Alive: the worker answers."""
    return {"status": "ok"}


@bp.get("/readyz")
@bp.output(Ready, description="Ready")
@bp.doc(
    operation_id="readyz",
    responses={
        503: {"description": "Not ready", "content": {"application/json": {"schema": Ready}}}
    },
)
def readyz():
    """Ready: models loaded and the store reachable (503 otherwise)."""
    checks = readiness(state())
    ok = all(v is True for k, v in checks.items() if k in ("models", "store"))
    return {"status": "ready" if ok else "not_ready", "checks": checks}, 200 if ok else 503


@bp.get("/metrics")
@bp.doc(
    summary="Prometheus metrics of every worker",
    operation_id="metrics",
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": binary()}}},
)
def metrics():
    """Prometheus text format, aggregated over gunicorn workers."""
    return render()


@bp.get("/v1/info")
@v1_doc(bp, "info", {}, responses={200: {"description": "Workers, models of each kind, limits"}})
def info():
    """The service's configuration as a client sees it: workers (the processes serving now),
    the models each catalog kind runs (detector, embedder, verifier, score threshold) and
    limits. Needs a key when keys are configured (as every ``/v1`` route)."""
    return service_info(state(), caller())

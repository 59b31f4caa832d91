"""Liveness, readiness and metrics."""

from __future__ import annotations

from apiflask import APIBlueprint

from api.metrics import render
from api.schemas import Alive, Ready, binary
from api.state import state
from core.errors import SightingError

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
    s = state()
    checks = {"models": s.pipeline is not None}
    try:
        s.repository.store.check()
        checks["store"] = True
    except SightingError as exc:
        checks["store"] = False
        checks["store_error"] = exc.message
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

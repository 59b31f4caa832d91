"""API keys: who is asking, and which catalogs they may see.

Keys come from ``SIGHTING_API_KEYS`` (each key is its own tenant) and ``SIGHTING_ADMIN_KEYS``
(operators: every catalog). A tenant is named by a hash of its key, so the store never holds a
key. With no key configured the service runs open, as the single tenant ``local`` (for a
machine's own use; the README says to set keys before exposing it).
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, g, request

from core.errors import Unauthorized
from core.settings import Settings
from service.access import Caller

__all__ = ["HEADER", "LOCAL_TENANT", "Caller", "authenticate", "caller", "tenant_of"]

HEADER = "X-API-Key"
LOCAL_TENANT = "local"


def tenant_of(key: str) -> str:
    """A stable, non-reversible tenant id for an API key."""
    return "t_" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _matches(key: str, keys: list[str]) -> bool:
    return any(hmac.compare_digest(key.encode(), k.encode()) for k in keys)


def authenticate(settings: Settings) -> Caller:
    """The caller of the current request.

    Raises:
        Unauthorized: keys are configured and the request has none or an unknown one.
    """
    if not settings.auth_enabled:
        return Caller(LOCAL_TENANT, admin=False)
    key = request.headers.get(HEADER, "")
    if not key:
        raise Unauthorized(f"missing {HEADER} header")
    if _matches(key, settings.admin_keys):
        return Caller(tenant_of(key), admin=True)
    if _matches(key, settings.api_keys):
        return Caller(tenant_of(key))
    raise Unauthorized(f"unknown {HEADER}")


def caller() -> Caller:
    """The current request's caller (authenticated once per request, cached on ``g``)."""
    if "caller" not in g:
        g.caller = authenticate(current_app.extensions["sighting"].settings)
    return g.caller

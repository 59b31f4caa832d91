"""One JSON error shape for every failure, mapped once from the error tree.

    {"error": {"status": 404, "code": "not_found", "message": "...", "details": {...}}}

`SightingError` subclasses carry their status; werkzeug's HTTP errors (unknown route, wrong
method, body over the size limit) and APIFlask's validation errors use the same shape. A broken
internal invariant (a `SightingError` of status 500, e.g. the engine's internal error type) and
anything unexpected (any other exception) are server errors: logged with their traceback and
answered 500 without internals, never 422.
"""

from __future__ import annotations

import logging

from apiflask import APIFlask, HTTPError
from werkzeug.exceptions import HTTPException

from core.errors import Busy, SightingError

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "bad_input",
    500: "internal_error",
    503: "unavailable",
}


def error_body(status: int, message: str, code: str | None = None, details: dict | None = None):
    """The JSON body of an error response."""
    return {
        "error": {
            "status": status,
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "details": details or {},
        }
    }


def register_error_handlers(app: APIFlask) -> None:
    """Install the handlers on the app (called by the factory)."""

    @app.error_processor
    def _apiflask_error(error: HTTPError):
        details = error.detail if isinstance(error.detail, dict) else {}
        return (
            error_body(error.status_code, str(error.message), None, details),
            error.status_code,
            error.headers,
        )

    @app.errorhandler(SightingError)
    def _sighting_error(error: SightingError):
        if error.status == 500:  # an internal invariant failed: a bug, not the client's input
            return _unexpected(error)
        if error.status >= 500:
            log.warning("%s: %s", type(error).__name__, error.message)
        body = error_body(error.status, error.message, error.code, error.details)
        headers = {"Retry-After": "1"} if isinstance(error, Busy) else {}
        return body, error.status, headers

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        # werkzeug's own headers (a 405's Allow), less its HTML content type
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return error_body(status, error.description or error.name), status, headers

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.error("internal error: %s: %s", type(error).__name__, error, exc_info=error)
        return error_body(500, "internal error; see the server log"), 500

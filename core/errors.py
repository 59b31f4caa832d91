"""One error tree for the whole project.

Each class carries the HTTP status it maps to and a short machine-readable code; the API
turns any `SightingError` into one JSON shape (``{"error": {"code", "message", "status"}}``)
in a single place (`api/errors.py`). Library code raises these, never bare ``assert``.

`InternalError` is the one for a broken invariant between Sighting's own stages (a bug, not
the caller's fault): it is no `BadInput`, so a caller never sees it as a 422.
"""

from __future__ import annotations


class SightingError(Exception):
    """Base of every error Sighting raises on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InternalError(SightingError):
    """An internal invariant does not hold (a stage handed another stage inconsistent data):
    a server bug, 500; not one of the errors a caller can cause or fix."""

    status = 500
    code = "internal_error"


class BadInput(SightingError):
    """The request or input is well-formed but cannot be used (corrupt image, bad option)."""

    status = 422
    code = "bad_input"


class UnsupportedMedia(BadInput):
    """The body is not a type Sighting reads (e.g. a PDF where an image was expected)."""

    status = 415
    code = "unsupported_media_type"


class TooLarge(BadInput):
    """The body, image or request exceeds a configured limit."""

    status = 413
    code = "too_large"


class NotFound(SightingError):
    """A catalog, item, image or stream does not exist (or belongs to another tenant)."""

    status = 404
    code = "not_found"


class Conflict(SightingError):
    """The request conflicts with the current state (duplicate id, version race lost)."""

    status = 409
    code = "conflict"


class Unauthorized(SightingError):
    """Missing or unknown API key."""

    status = 401
    code = "unauthorized"


class Forbidden(SightingError):
    """A known caller asking for something its key does not allow."""

    status = 403
    code = "forbidden"


class ModelUnavailable(SightingError):
    """A model file is missing, corrupt, or the model cannot run on this machine."""

    status = 503
    code = "model_unavailable"


class StoreUnavailable(SightingError):
    """The catalog store (local folder or S3) failed or cannot be reached."""

    status = 503
    code = "store_unavailable"


class Busy(SightingError):
    """Too many requests are already waiting for this worker; retry shortly."""

    status = 503
    code = "busy"


class IndexUnavailable(Busy):
    """The vector engine (Milvus) is down or slower than its timeout: retry shortly.

    A `Busy`, so the API answers 503 with ``Retry-After``; uploads are kept in the store and
    indexed when the engine answers again.
    """

    code = "index_unavailable"

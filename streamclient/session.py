"""The HTTP side: one keep-alive session to the service, and what its error answers mean."""

from __future__ import annotations

import requests

MAX_RETRY_AFTER_S = 5.0  # cap on a server's Retry-After
FATAL_STATUSES = {400, 401, 403, 404, 405, 409}  # stop: retrying cannot help
HINTS = {
    401: "give a valid key with --api-key",
    404: "check --catalog (unknown catalog, or another tenant's) and that the service has streams",
    409: "the stream id is in use by another client: choose another --stream-id",
    413: "the frames are too large: try --max-side or a lower --quality",
}


class FatalServerError(Exception):
    """The server refused the stream (a 4xx that retrying cannot fix)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def open_session(api_key: str | None) -> requests.Session:
    """A keep-alive session that sends JPEG bodies (and ``X-API-Key`` when given)."""
    session = requests.Session()
    session.headers["Content-Type"] = "image/jpeg"
    if api_key:
        session.headers["X-API-Key"] = api_key
    return session


def error_message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200].strip() or response.reason or "no message"


def retry_after(response: requests.Response, default: float) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return min(MAX_RETRY_AFTER_S, default)

"""The HTTP side: one keep-alive session to a stream's endpoint, what each answer means, and
the retry policy (consecutive failures, exponential back-off, the server's Retry-After)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

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


@dataclass(frozen=True)
class Reply:
    """What one frame's POST came back with (exactly one of the first four is set)."""

    answer: dict | None = None  # 200 with a JSON object: the stream answer
    busy_wait_s: float | None = None  # 429/503: drop the frame, back off this long
    refused: str | None = None  # a 4xx for this frame only ("422 message"): skip it
    problem: str | None = None  # no usable answer (connection, 5xx, not JSON): retry
    status: int = 0  # the HTTP status (0: no answer)
    latency_ms: float = 0.0  # round trip


def stream_endpoint(url: str, catalog: str, stream_id: str) -> str:
    """``<base>/v1/catalogs/<catalog>/streams/<stream_id>`` (a trailing ``/v1`` is allowed)."""
    base = url.rstrip("/").removesuffix("/v1")
    return f"{base}/v1/catalogs/{quote(catalog, safe='')}/streams/{quote(stream_id, safe='')}"


class StreamSession:
    """One stream's keep-alive session: send frames, count consecutive failures, delete.

    Args:
        url: the service's base URL; ``catalog``, ``stream_id``: the stream.
        api_key: sent as ``X-API-Key`` (None: no key).
        timeout_s: per request (connecting: at most 5 s).
        retries: consecutive failures allowed; one more raises `FatalServerError`.
        backoff_s: the first back-off; doubles per consecutive failure (and per busy answer,
            up to `MAX_RETRY_AFTER_S`, when the server gives no Retry-After).
        log: where retry messages go.
    """

    def __init__(
        self,
        url: str,
        catalog: str,
        stream_id: str,
        api_key: str | None,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        log: Callable[[str], None] = print,
    ) -> None:
        self.url, self.stream_id = url, stream_id
        self.endpoint = stream_endpoint(url, catalog, stream_id)
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.log = log
        self._http = open_session(api_key)
        self._failures = 0  # consecutive
        self._busy_backoff = backoff_s

    def post_frame(self, frame_index: int, jpeg: bytes, top_k: int) -> Reply:
        """POST one JPEG frame to ``<endpoint>/frames``.

        Raises:
            FatalServerError: a status retrying cannot fix (`FATAL_STATUSES`).
        """
        t0 = time.monotonic()
        try:
            response = self._http.post(
                f"{self.endpoint}/frames",
                params={"frame_index": frame_index, "top_k": top_k},
                data=jpeg,
                timeout=(min(5.0, self.timeout_s), self.timeout_s),
            )
        except requests.RequestException as e:
            return Reply(problem=f"cannot reach {self.url}: {type(e).__name__}")
        status = response.status_code
        if status == 200:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                return Reply(problem="answer is not JSON", status=status)
            self._failures, self._busy_backoff = 0, self.backoff_s
            return Reply(answer=answer, status=status, latency_ms=(time.monotonic() - t0) * 1000)
        if status in (429, 503):  # busy
            wait = retry_after(response, self._busy_backoff)
            self._busy_backoff = min(MAX_RETRY_AFTER_S, self._busy_backoff * 2)
            return Reply(busy_wait_s=wait, status=status)
        if status in FATAL_STATUSES:
            raise FatalServerError(status, error_message(response))
        if 400 <= status < 500:  # a frame the server will not take
            return Reply(refused=f"{status} {error_message(response)}", status=status)
        return Reply(problem=f"server error {status}: {error_message(response)}", status=status)

    def failure(self, problem: str, status: int = 0, retry: bool = True) -> float:
        """Count a consecutive failure; the back-off before the next try (0 without ``retry``).

        Raises:
            FatalServerError: more than ``retries`` consecutive failures.
        """
        self._failures += 1
        hint = HINTS.get(status)
        if self._failures > self.retries:
            raise FatalServerError(0, problem + (f" ({hint})" if hint else ""))
        count = f"{self._failures}/{self.retries}"
        if not retry:
            self.log(f"{problem}; skipped ({count} consecutive failures)")
            return 0.0
        wait = self.backoff_s * 2 ** (self._failures - 1)
        self.log(f"{problem}; retry {count} in {wait:.1f} s")
        return wait

    def delete(self) -> int | None:
        """DELETE the stream; its status, or None when the server cannot be reached (logged)."""
        try:
            response = self._http.delete(self.endpoint, timeout=min(5.0, self.timeout_s))
        except requests.RequestException as e:
            self.log(f"could not delete stream {self.stream_id}: {type(e).__name__}")
            return None
        return response.status_code

    def close(self) -> None:
        self._http.close()


def open_session(api_key: str | None) -> requests.Session:
    """A keep-alive session that sends JPEG bodies (and ``X-API-Key`` when given)."""
    session = requests.Session()
    session.headers["Content-Type"] = "image/jpeg"
    if api_key:
        session.headers["X-API-Key"] = api_key
    return session


def error_message(response: requests.Response) -> str:
    """The message of the service's error shape, else the start of the body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200].strip() or response.reason or "no message"


def retry_after(response: requests.Response, default: float) -> float:
    """The server's Retry-After in seconds (``default`` without one), capped."""
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return min(MAX_RETRY_AFTER_S, default)

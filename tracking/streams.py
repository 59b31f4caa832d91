"""`StreamRegistry`: a worker's open streams, with an idle timeout and a cap.

A stream is named by (tenant, catalog id, stream id) and holds one `TrackedMatcher`. It opens
on its first frame and closes on request, after ``idle_s`` without frames (swept on every
registry call, no background thread), or when ``max_streams`` are open and a new one arrives
(the least recently used is evicted). Memory is thus bounded by ``max_streams`` x (tracks of
a stream), however many stream ids clients make up. Opening or closing a stream restarts
nothing: the models are the worker's, shared by every stream.

Tracking state lives in the worker that saw the frames: a client should send a stream's
frames over one keep-alive connection, so they reach one worker. Frames that land on
another worker open a second, independent stream there (new track ids, verification
repeated); nothing breaks, it only costs more verification.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetools import TTLCache

from core.errors import BadInput, Conflict, NotFound
from tracking.tracker import TrackedMatcher

STREAM_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

StreamKey = tuple[str, str, str]  # (tenant, catalog id, stream id)


def check_stream_id(stream_id: str) -> str:
    """``stream_id`` if it is 1-64 of ``A-Z a-z 0-9 . _ -``, else `BadInput` (422)."""
    if not STREAM_ID.fullmatch(stream_id or ""):
        raise BadInput(f"stream id {stream_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return stream_id


@dataclass
class Stream:
    """One open stream."""

    key: StreamKey
    matcher: TrackedMatcher
    client: str | None  # the X-Stream-Client of its first frame (None: not given)
    opened: float
    last_seen: float
    last_index: int = -1  # the last frame index received
    lock: threading.Lock = field(default_factory=threading.Lock)
    labels: dict = field(default_factory=dict)  # track id -> (label set, labels), api.labels
    keeper: object | None = None  # its tracks' sightings (sightings.keep.TrackKeeper), on keep

    def accept(self, frame_index: int | None, client: str | None) -> int:
        """Check that a frame belongs to this stream; returns its frame index.

        Raises:
            Conflict: another client (different ``X-Stream-Client``) or a frame index that
                does not move forward: two senders are using one stream id.
        """
        if client is not None and self.client is not None and client != self.client:
            raise Conflict(
                f"stream {self.key[2]!r} is in use by another client ({self.client!r}); "
                "choose another stream id or DELETE this stream first"
            )
        if frame_index is None:
            return self.last_index + 1
        if frame_index <= self.last_index:
            raise Conflict(
                f"stream {self.key[2]!r}: frame_index {frame_index} is not after the last one "
                f"({self.last_index}); is another client sending to the same stream id? "
                "Use a new stream id, or DELETE this stream to start over"
            )
        return frame_index


class _OpenStreams(TTLCache):
    """`cachetools.TTLCache` of open streams: each expires ``ttl`` after it was last (re)set,
    i.e. after its last frame; counts the streams it expired."""

    expired = 0

    def expire(self, time=None):
        gone = super().expire(time)
        self.expired += len(gone)
        return gone


class StreamRegistry:
    """Open streams of one worker (thread-safe)."""

    def __init__(
        self,
        make_matcher: Callable[[], TrackedMatcher],
        *,
        idle_s: float = 60.0,
        max_streams: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_matcher = make_matcher
        self.idle_s = idle_s
        self.max_streams = max_streams
        self.clock = clock
        self._streams = _OpenStreams(maxsize=max_streams, ttl=idle_s, timer=clock)
        self._lock = threading.Lock()
        self.evicted = 0  # streams closed by the cap

    @property
    def expired(self) -> int:
        """Streams closed by the idle timeout."""
        return self._streams.expired

    def sweep(self) -> int:
        """Close streams idle for longer than ``idle_s``; returns how many closed."""
        with self._lock:
            return self._sweep(self.clock())

    def _sweep(self, now: float) -> int:
        return len(self._streams.expire(now))

    def open(self, key: StreamKey, client: str | None = None) -> Stream:
        """The stream named ``key``, opened if new (evicting the least recently used at cap)."""
        with self._lock:
            now = self.clock()
            self._sweep(now)
            stream = self._streams.get(key)
            if stream is None:
                while len(self._streams) >= self.max_streams:  # the least recently seen goes
                    oldest = min(self._streams.values(), key=lambda s: s.last_seen)
                    if self._streams.pop(oldest.key, None) is not None:
                        self.evicted += 1
                stream = Stream(key, self.make_matcher(), client, now, now)
            stream.last_seen = now
            self._streams[key] = stream  # (re)starts its idle time
            return stream

    def get(self, key: StreamKey) -> Stream:
        """An open stream; `NotFound` if it is not open (never was, closed or expired)."""
        with self._lock:
            self._sweep(self.clock())
            stream = self._streams.get(key)
        if stream is None:
            raise NotFound(f"no open stream {key[2]!r} on catalog {key[1]!r}")
        return stream

    def close(self, key: StreamKey) -> None:
        """Close a stream; `NotFound` if it is not open."""
        with self._lock:
            self._sweep(self.clock())
            if self._streams.pop(key, None) is None:
                raise NotFound(f"no open stream {key[2]!r} on catalog {key[1]!r}")

    def of_tenant(self, tenant: str | None) -> list[Stream]:
        """Open streams of a tenant (all of them when None), least recently used first."""
        with self._lock:
            self._sweep(self.clock())
            streams = sorted(self._streams.values(), key=lambda s: s.last_seen)
            return [s for s in streams if tenant is None or s.key[0] == tenant]

    def __len__(self) -> int:
        return len(self._streams)

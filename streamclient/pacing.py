"""Realtime pacing of a file source: send each frame at its time, skip frames already late."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamclient.sources import DEFAULT_FPS


class Pacer:
    """Realtime pacing for files: wait for a frame's time, drop frames already late.

    Frame i is due at ``i / fps`` seconds after the first call. An early frame is waited for;
    a frame is dropped when the next one is already due (a newer frame exists), so a slow
    server makes the client skip ahead instead of falling behind.
    """

    def __init__(
        self,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.fps = fps if fps > 0 else DEFAULT_FPS
        self._clock, self._sleep = clock, sleep
        self._start: float | None = None

    def should_send(self, index: int) -> bool:
        """Whether to send frame ``index`` (sleeps until it is due when early)."""
        now = self._clock()
        if self._start is None:
            self._start = now - index / self.fps
        elapsed = now - self._start
        if (index + 1) / self.fps <= elapsed:
            return False
        if index / self.fps > elapsed:
            self._sleep(index / self.fps - elapsed)
        return True

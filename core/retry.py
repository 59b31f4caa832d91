"""Optimistic concurrency: read a value and its etag, change it, write it only if nobody wrote
in between (the store's ``put_if``), and start over when someone did, a bounded number of times.

The one loop for every read-change-write of a shared object in a store (a catalog's manifest,
a job's record).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from core.errors import Conflict

V = TypeVar("V")
R = TypeVar("R")


def compare_and_swap(
    read: Callable[[], tuple[V, str]],
    change: Callable[[V], tuple[bytes, R] | None],
    write: Callable[[bytes, str], None],
    *,
    tries: int,
    pause: Callable[[int], float],
    gave_up: Callable[[], Conflict],
) -> R | None:
    """Read, change and conditionally write until a write sticks.

    Args:
        read: the current value and its etag.
        change: gets the fresh value; returns the bytes to write and what to return once
            they are written, or None to write nothing (the change no longer applies).
        write: ``write(data, etag)`` stores ``data`` unless the object's etag moved on from
            ``etag``, in which case it raises `Conflict`.
        tries: how many times to read and try.
        pause: seconds to wait after the ``attempt``-th (from 0) lost race.
        gave_up: the error raised when every try lost its race.

    Returns:
        What ``change`` returned with the bytes written, or None when ``change`` declined.

    Raises:
        Conflict: ``gave_up()`` after ``tries`` lost races; any error of ``read``,
            ``change`` or ``write`` other than a lost race propagates at once.
    """
    for attempt in range(tries):
        value, etag = read()
        step = change(value)
        if step is None:
            return None
        data, result = step
        try:
            write(data, etag)
        except Conflict:
            time.sleep(pause(attempt))
            continue
        return result
    raise gave_up()

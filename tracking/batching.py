"""Batching across streams (for a GPU worker): frames of different streams, arriving within a
few milliseconds of each other, run through one batched model call.

Each stream's request thread calls `BatchCollector.submit(item)` and blocks; the first item of
a batch opens a window of ``window_ms``; the batch closes when the window ends or it holds
``max_batch`` items, then one thread runs ``run_batch(items)`` (e.g. the detector on every
frame at once, then the embedder on every crop) and each caller gets its own result back.
A failure of the batch is raised in every caller of it. With ``window_ms=0`` every item runs
alone, at once (the CPU default: there a batch is not faster, see docs/runtimes.md).

This module is the collector and its contract (tested on the CPU); wiring it into the stream
route for GPU workers (``SIGHTING_STREAM_BATCH_MS``) is described in docs/runtimes.md and is
not switched on yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Slot(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


class BatchCollector(Generic[T, R]):
    """Collects concurrent submissions into batches for ``run_batch`` (thread-safe)."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[T]], Sequence[R]],
        *,
        window_ms: float = 5.0,
        max_batch: int = 16,
    ) -> None:
        if window_ms < 0 or max_batch < 1:
            raise ValueError(f"window_ms >= 0 and max_batch >= 1, got {window_ms}, {max_batch}")
        self.run_batch = run_batch
        self.window_ms = window_ms
        self.max_batch = max_batch
        self._lock = threading.Condition()
        self._pending: list[_Slot[T, R]] = []
        self._leader_waiting = False
        self.batch_sizes: list[int] = []  # sizes of the batches run so far

    def submit(self, item: T) -> R:
        """Run ``item`` in the next batch; returns its result (raises the batch's error)."""
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            leader = not self._leader_waiting
            if leader:
                self._leader_waiting = True
            elif len(self._pending) >= self.max_batch:
                self._lock.notify_all()  # full: the leader need not wait out the window
        if leader:
            self._lead()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """The first submitter of a batch waits out the window, then runs the batch."""
        deadline = time.monotonic() + self.window_ms / 1000.0
        with self._lock:
            while len(self._pending) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._leader_waiting = False
            if self._pending:  # overflow: the oldest waiting item leads the next batch
                self._leader_waiting = True
                threading.Thread(target=self._lead, daemon=True).start()
        self.batch_sizes.append(len(batch))
        try:
            results = self.run_batch([s.item for s in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)}")
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        except BaseException as exc:  # every caller of the batch gets the error
            for slot in batch:
                slot.error = exc
        finally:
            for slot in batch:
                slot.done.set()

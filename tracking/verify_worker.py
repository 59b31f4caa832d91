"""Keypoint verification off the frame path: one worker thread per process.

On streams and videos a frame's answer no longer waits for keypoint verification (the slowest
stage). `TrackedMatcher` hands the tracks due for verification to the process's
`VerificationWorker` and answers the frame at once with the tracks' current matches (ranked,
unverified for a new track; the last verdict for a known one). The worker takes jobs from a
bounded queue, most promising first (the tracker's urgency: new tracks before re-checks,
the one most similar to a catalog item first), runs the same `Pipeline.match_vectors` as the
in-request path, and hands the verdict back; it attaches to the track and shows on the next
frame that carries it (``verified_now``). Detection, tracking and embedding of the next frames
run meanwhile. Only when a verdict arrives changes, never what it says.

The queue is bounded (``capacity``): when full, the least promising job is dropped and its
track stays due, so the tracker offers it again on a later frame (nothing is lost, memory is
bounded). A job whose stream has closed is skipped.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from matching.catalog_view import CatalogView
from matching.pipeline import Pipeline, PipelineConfig, Timer
from matching.result import Match

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    """A verification's result, as the worker hands it back to the stream."""

    track_id: int
    matches: list[Match]
    frame: int  # the stream frame the crop came from
    embedding: np.ndarray  # float32 (D,) the embedding verified
    area: float  # the box area (px) verified
    ms: float  # wall time of the verification


@dataclass(order=True)
class _Job:
    urgency: float
    seq: int
    track_id: int = field(compare=False)
    frame: int = field(compare=False)
    embedding: np.ndarray = field(compare=False)
    crop: np.ndarray = field(compare=False)
    area: float = field(compare=False)
    catalog: CatalogView = field(compare=False)
    config: PipelineConfig = field(compare=False)
    deliver: weakref.WeakMethod = field(compare=False)  # dead: the stream closed, skip
    on_drop: weakref.WeakMethod = field(compare=False)


class VerificationWorker:
    """A daemon thread verifying tracks from a bounded priority queue (thread-safe)."""

    def __init__(self, pipeline: Pipeline, capacity: int = 64) -> None:
        self.pipeline = pipeline
        self.capacity = capacity
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.done = 0  # verifications run
        self.dropped = 0  # jobs dropped from a full queue
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="verification", daemon=True)
        self._thread.start()

    def submit(
        self,
        *,
        urgency: float,
        track_id: int,
        frame: int,
        embedding: np.ndarray,
        crop: np.ndarray,
        area: float,
        catalog: CatalogView,
        config: PipelineConfig,
        deliver: Callable[[Verdict], None],
        on_drop: Callable[[int], None],
    ) -> None:
        """Queue one track's verification (lower ``urgency`` runs first). ``deliver`` (a
        bound method, held weakly: a closed stream's jobs are skipped) gets the `Verdict`,
        from the worker thread; ``on_drop(track_id)`` is called when the job is dropped from
        a full queue or fails."""
        job = _Job(
            urgency, next(self._seq), track_id, frame, embedding, crop, area, catalog, config,
            weakref.WeakMethod(deliver), weakref.WeakMethod(on_drop),
        )  # fmt: skip
        dropped = None
        with self._cond:
            heapq.heappush(self._heap, job)
            if len(self._heap) > self.capacity:
                dropped = max(self._heap)  # the least promising
                self._heap.remove(dropped)
                heapq.heapify(self._heap)
                self.dropped += 1
            self._cond.notify()
        if dropped is not None:
            _call(dropped.on_drop, dropped.track_id)

    @property
    def queued(self) -> int:
        """Jobs waiting now."""
        with self._cond:
            return len(self._heap)

    def idle(self, timeout: float = 30.0) -> bool:
        """Wait until the queue is empty and nothing runs (tests, end of a video)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Stop the thread after the job it runs (queued jobs are dropped)."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = heapq.heappop(self._heap)
                self.busy = True
            try:
                self._verify(job)
            except Exception:  # a bug must not kill the worker: the track stays unverified
                log.exception("verification of track %d failed", job.track_id)
                _call(job.on_drop, job.track_id)
            finally:
                with self._cond:
                    self.busy = False
                    self.done += 1
                    self._cond.notify_all()

    def _verify(self, job: _Job) -> None:
        if job.deliver() is None:
            return  # its stream closed meanwhile
        timer = Timer()
        start = time.perf_counter()
        answer = self.pipeline.match_vectors(
            job.embedding[None], [job.crop], job.catalog, job.config, timer
        )[0]
        ms = 1000.0 * (time.perf_counter() - start)
        _call(job.deliver, Verdict(job.track_id, answer, job.frame, job.embedding, job.area, ms))


def _call(method: weakref.WeakMethod, arg: object) -> None:
    """Call a weakly held bound method if its object is still alive."""
    bound = method()
    if bound is not None:
        bound(arg)


_workers: weakref.WeakKeyDictionary[Pipeline, VerificationWorker] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def worker_for(pipeline: Pipeline) -> VerificationWorker:
    """The process's verification worker of ``pipeline`` (started on first use)."""
    global _atexit_registered
    with _lock:
        worker = _workers.get(pipeline)
        if worker is None:
            worker = _workers[pipeline] = VerificationWorker(pipeline)
            if not _atexit_registered:
                atexit.register(_close_all)
                _atexit_registered = True
        return worker


_atexit_registered = False


def _close_all() -> None:
    """At interpreter exit, stop every worker after the job it runs: a daemon thread killed
    inside a model call aborts the process ("terminate called without an active exception")."""
    for worker in list(_workers.values()):
        worker.close(timeout=10.0)

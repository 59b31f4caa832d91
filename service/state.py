"""What one worker holds, in one object: settings, the store's repository, the models, the
catalog cache, the model queue, the open streams, the job queue and the fitted label sets.

`Services` is built once per worker by ``api.create_app`` (gunicorn workers each build their
own; models are never loaded in the master: see gunicorn.conf.py). The job queue and the label
sets are built on first use behind the object's one lock (the label embedder loads there,
outside the model queue, so detect calls without labels never wait for it).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from catalog.cache import CatalogCache
from catalog.repository import CatalogRepository
from core.errors import Busy, Conflict
from core.settings import Settings
from matching.index import IndexConfig
from matching.pipeline import Pipeline
from tracking.streams import StreamRegistry
from tracking.tracker import TrackedMatcher, TrackerConfig

if TYPE_CHECKING:
    from jobs import JobQueue
    from labels.cache import LabelerCache
    from labels.text import TextLabelerCache


class ModelQueue:
    """First come, first served access to a worker's models, with a bounded queue.

    torch already uses every core for one call, so calls run one at a time; waiters are
    served in arrival order (a plain Lock lets late arrivals overtake, which stretches the
    tail latency), and beyond ``max_waiting`` a request is refused at once with 503 and
    Retry-After instead of waiting past the clients' timeouts.
    """

    def __init__(self, max_waiting: int = 16) -> None:
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self) -> None:
        with self._lock:
            if not self._held and not self._waiters:
                self._held = True
                return
            if len(self._waiters) >= self.max_waiting:
                raise Busy(f"{len(self._waiters)} requests are waiting for this worker's models")
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # the releasing holder hands the models over directly

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False

    @property
    def waiting(self) -> int:
        """Requests waiting now."""
        return len(self._waiters)


def stream_registry(settings: Settings, pipeline: Pipeline) -> StreamRegistry:
    """A worker's registry of open streams, each tracked with the worker's models."""
    config = TrackerConfig.from_settings(settings, settings.stream_imgsz)
    return StreamRegistry(
        lambda: TrackedMatcher(pipeline, config),
        idle_s=settings.stream_idle_s,
        max_streams=settings.max_streams,
    )


@dataclass
class SightingState:
    """Per-worker state of the service (one object; see the module's docstring)."""

    settings: Settings
    repository: CatalogRepository
    pipeline: Pipeline
    catalogs: CatalogCache
    model_lock: ModelQueue = field(default_factory=ModelQueue)
    streams: StreamRegistry | None = None
    _jobs: JobQueue | None = field(default=None, repr=False)
    _labelers: LabelerCache | None = field(default=None, repr=False)
    _text_labelers: TextLabelerCache | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.streams is None:
            self.streams = stream_registry(self.settings, self.pipeline)

    @classmethod
    def build(cls, settings: Settings, pipeline: Pipeline) -> SightingState:
        """A worker's state over the configured store, with ``pipeline``'s models."""
        from catalog.stores import open_store

        repository = CatalogRepository(open_store(settings))
        return cls(
            settings=settings,
            repository=repository,
            pipeline=pipeline,
            catalogs=CatalogCache(
                repository,
                lambda kind: pipeline.embedder_for(kind).dim,
                sync_interval_s=settings.sync_interval_s,
                keypoint_cache=settings.keypoint_cache,
                index=IndexConfig.from_settings(settings),  # SIGHTING_INDEX_BACKEND (issue 27)
            ),
            model_lock=ModelQueue(settings.max_queue),
        )

    @property
    def jobs(self) -> JobQueue:
        """This worker's job queue over the app's store (built on first use)."""
        with self._lock:
            if self._jobs is None:
                from jobs import JobQueue

                self._jobs = JobQueue(self.settings, self.repository.store)
            return self._jobs

    def check_clip(self) -> None:
        """409 when the operator has configured no CLIP files: prompts (labels by text) are
        refused before any work starts. Loads nothing."""
        if not self.settings.clip:
            raise Conflict(
                "labels by text (prompts) need CLIP files, and this service has none: the "
                "operator sets SIGHTING_CLIP (docs/traps.md); or use a label set (labels=)"
            )

    @property
    def text_labelers(self) -> TextLabelerCache:
        """This worker's CLIP model (``SIGHTING_CLIP``, loaded on first use) and its labelers
        per prompt list (409: `check_clip`)."""
        self.check_clip()
        with self._lock:
            if self._text_labelers is None:
                from labels.text import TextLabelerCache, load_clip_backend

                backend = load_clip_backend(
                    self.settings.clip, self.settings, arch=self.settings.clip_arch
                )
                self._text_labelers = TextLabelerCache(backend)
            return self._text_labelers

    @property
    def labelers(self) -> LabelerCache:
        """This worker's fitted label sets (the label embedder loads on first use, here,
        not under the model queue)."""
        with self._lock:
            if self._labelers is None:
                from labels import load_label_embedder
                from labels.cache import LabelerCache

                embedder = load_label_embedder(self.settings)
                self._labelers = LabelerCache(
                    self.repository, embedder, sync_interval_s=self.settings.sync_interval_s
                )
            return self._labelers

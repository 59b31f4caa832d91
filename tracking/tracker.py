"""`TrackedMatcher`: one video stream's frames -> detections with track ids and cached verdicts.

Keypoint verification is the expensive stage (hundreds of ms per crop on a CPU), while an
object seen in consecutive frames is the same object. So per stream, detections are tracked
with ByteTrack (the implementation ultralytics ships) and a track is verified only:

- once, soon after it appears,
- again ``reverify_frames`` frames after its last verification,
- or when its embedding drifts: cosine to the embedding at its last verification falls below
  ``drift_cosine`` (the object turned, the tracker swapped it for another).

Between verifications the track's last verified answer (its ranked matches) is reused. Every
frame gets detection and tracking; a track is embedded when it appears and then every
``check_every`` frames (the drift check), so embedding costs scale with tracks, not frames.
A detection ByteTrack has not confirmed yet (``track_id`` -1, usually only its first frame)
gets no matches until it is confirmed.

Verification has a time budget (``verify_budget_ms`` per frame, on average): live video must
keep up with its source, so when verifying is slow (a CPU: 0.1-0.5 s a crop) the tracks due
wait, most promising first (new tracks, highest embedding similarity first), and show their
ranked, unverified candidates meanwhile; nothing is hidden. On a GPU (~20 ms a crop) the
budget rarely binds. A track is verified against its ``shortlist`` best candidates (2: the
closest look-alike is the one keypoints must tell apart), with ``refs_per_item`` catalog
images each (1: the most similar), not the request's numbers.

The whole-frame row (class ``"image"``) is not tracked and not produced here: it has no
motion of its own and verifying it every frame is what tracking exists to avoid; clients
that want whole-frame matching call the detect endpoint on a keyframe.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass, replace

import numpy as np

from core.runtime import prepare_environment
from core.settings import Settings
from detection.detections import Detections
from detection.detector import Detector
from matching.catalog_view import CatalogView
from matching.pipeline import Pipeline, PipelineConfig, Timer
from matching.result import FrameResult, Match
from tracking.verify_worker import Verdict, worker_for


def _setting(name: str):
    """The default of setting ``name``: `Settings` is the one table of the knobs it has."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class TrackerConfig:
    """Options of stream tracking; one per stream. The knobs that are settings default to the
    settings' defaults (`from_settings` reads the configured values)."""

    # re-verify a track this many frames after its last verification
    reverify_frames: int = _setting("reverify_frames")
    # re-verify when cosine to the last verified embedding is below
    drift_cosine: float = _setting("drift_cosine")
    reverify_min_area: float = 0.5  # re-verify only views at least this share of the verified area
    check_every: int = 10  # embed a verified track (drift check) every this many frames
    verify_per_frame: int = 3  # most tracks verified in one frame (the rest wait a frame)
    # average ms of verification per frame; None: no time limit. Unused time is saved up to
    # ``verify_burst_ms`` (a burst of new tracks), overspending is paid back on later frames.
    verify_budget_ms: float | None = _setting("verify_budget_ms") or None
    verify_burst_ms: float = 1000.0
    # candidates a track is verified against (None: the request's)
    shortlist: int | None = _setting("stream_shortlist")
    refs_per_item: int | None = 1  # catalog images per candidate (None: the request's)
    imgsz: int | None = None  # detector input size for streams (None: the detector's own)
    track_high: float = 0.25  # ByteTrack: first-association score threshold
    track_low: float = 0.1  # ByteTrack: second-association (low score) threshold
    new_track: float = 0.25  # ByteTrack: score needed to start a track
    track_buffer: int = 30  # ByteTrack: frames a lost track is kept for re-finding
    match_iou: float = 0.8  # ByteTrack: association cost threshold (1 - IoU, score-fused)
    # verify off the frame path (`tracking.verify_worker`): the verdict shows on a later frame
    async_verify: bool = _setting("async_verify")

    @classmethod
    def from_settings(cls, settings: Settings, imgsz: int = 0) -> TrackerConfig:
        """The tracking options of the settings, the detector at ``imgsz`` (0: its own size;
        e.g. ``settings.stream_imgsz`` for streams, ``settings.video_imgsz`` for videos)."""
        return cls(
            reverify_frames=settings.reverify_frames,
            drift_cosine=settings.drift_cosine,
            verify_budget_ms=settings.verify_budget_ms or None,
            shortlist=settings.stream_shortlist,
            imgsz=imgsz or None,
            async_verify=settings.async_verify,
        )


class _Boxes:
    """The Results-like view of a `Detections` that ``BYTETracker.update`` reads."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy = xyxy
        self.conf = conf
        self.cls = cls

    @property
    def xywh(self) -> np.ndarray:
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> _Boxes:
        return _Boxes(self.xyxy[index], self.conf[index], self.cls[index])


def _bytetrack(config: TrackerConfig):
    """A fresh ultralytics ``BYTETracker`` configured from ``config``."""
    prepare_environment()
    from ultralytics.trackers.byte_tracker import BYTETracker

    args = argparse.Namespace(
        tracker_type="bytetrack",
        track_high_thresh=config.track_high,
        track_low_thresh=config.track_low,
        new_track_thresh=config.new_track,
        track_buffer=config.track_buffer,
        match_thresh=config.match_iou,
        fuse_score=True,
    )
    return BYTETracker(args)


@dataclass
class _TrackState:
    """What a stream remembers of one track."""

    embedding: np.ndarray  # float32 (D,) its latest embedding
    checked_frame: int  # the stream frame it was last embedded
    matches: list[Match]  # its answer, best first: verified, or ranked only while pending
    verified_frame: int | None = None  # the frame of its last verification; None: pending
    verified_embedding: np.ndarray | None = None  # float32 (D,) at its last verification
    verified_area: float = 0.0  # largest box area (px) it was verified at

    @property
    def best_similarity(self) -> float:
        """Highest embedding similarity among its candidates (-1 when it has none)."""
        return max((m.similarity for m in self.matches), default=-1.0)


class TrackedMatcher:
    """Tracking + cached verification for one stream (not thread-safe: one frame at a time)."""

    def __init__(self, pipeline: Pipeline, config: TrackerConfig | None = None) -> None:
        self.pipeline = pipeline
        self.config = config or TrackerConfig()
        det = pipeline.detector
        imgsz = self.config.imgsz
        self.detector = (
            det
            if imgsz is None or imgsz == det.config.imgsz
            else Detector(det.backend, replace(det.config, imgsz=imgsz), det.fingerprint)
        )
        self._tracker = _bytetrack(self.config)
        self._tracks: dict[int, _TrackState] = {}
        self._size: tuple[int, int] | None = None
        self._credit_ms = 0.0  # verification time the stream may still spend (budget mode)
        self._call_ms = 0.0  # running estimate of one crop's verification time
        self.frames = 0  # frames processed
        self.verify_calls = 0  # crops verified so far
        # asynchronous verification: the process's worker, verdicts it handed back, the
        # tracks it holds, and for each verdict applied the frames it took to arrive
        self._worker = worker_for(pipeline) if self.config.async_verify else None
        self._arrived: list[Verdict] = []
        self._arrived_lock = threading.Lock()
        self._inflight: set[int] = set()
        self._unshown: set[int] = set()  # tracks whose verdict arrived but no frame showed yet
        self.verdict_lags: list[int] = []

    @property
    def open_tracks(self) -> int:
        """Tracks the stream currently remembers a verdict for."""
        return len(self._tracks)

    def process(
        self,
        frame: np.ndarray,
        catalog: CatalogView,
        config: PipelineConfig = PipelineConfig(),
    ) -> FrameResult:
        """Detect, track, embed, search, verify the tracks that need it.

        Args:
            frame: uint8 (H, W, 3) RGB; a frame of another size than the previous one
                restarts tracking (boxes of two sizes cannot be associated) with new ids.
            catalog: the catalog to search.
            config: per-request options (``top_k``, ``classes``, ``shortlist``, ``verify``);
                ``whole_frame`` is ignored (never tracked).

        Returns:
            A `FrameResult` whose detections (no whole-frame row) carry ``tracker_id``
            (ByteTrack ids, ``-1`` for detections not tracked yet), ``matches`` per detection
            (a tracked one's are its track's last answer) and ``verified_now``.
        """
        timer = Timer()
        index = self.frames
        self.frames += 1
        size = (int(frame.shape[0]), int(frame.shape[1]))
        if self._size is not None and size != self._size:
            self._restart()
        self._size = size
        with timer.stage("detect"):
            det = self.detector.detect([frame], classes=config.classes, whole_frame=False)[0]
        with timer.stage("track"):
            track_ids = self._track(det)
        self._unshown |= self._apply_verdicts(index)
        crops = list(det.data.get("crop", []))
        rows = self._to_embed(track_ids, index)
        with timer.stage("embed"):
            vectors = self.pipeline.embedder_for(catalog.kind).embed([crops[r] for r in rows])
        self._remember(track_ids, rows, vectors, crops, catalog, config, index, timer)
        verify = config.verify and self.pipeline.verifier is not None
        areas = (det.xyxy[:, 2] - det.xyxy[:, 0]) * (det.xyxy[:, 3] - det.xyxy[:, 1])
        verified_now = np.zeros(len(det), dtype=bool)
        if self._worker is not None:
            if verify:
                self._submit(track_ids, rows, areas, index, crops, catalog, config)
            due = []
            for r, tid in enumerate(track_ids):  # a verdict shows on the next frame with its track
                if int(tid) in self._unshown:
                    verified_now[r] = True
                    self._unshown.discard(int(tid))
        else:
            due = self._afford(self._due(track_ids, rows, areas, index)) if verify else []
        if due:
            sub = self._sub_config(config, len(due))
            states = [self._tracks[int(track_ids[r])] for r in due]
            started = timer.seconds.get("verify", 0.0)
            answers = self.pipeline.match_vectors(
                np.stack([st.embedding for st in states]),
                [crops[r] for r in due],
                catalog,
                sub,
                timer,
            )
            self._spend(1000.0 * (timer.seconds.get("verify", 0.0) - started), len(due))
            for r, state, answer in zip(due, states, answers, strict=True):
                verified_now[r] = True
                state.matches = answer
                state.verified_frame = index
                state.verified_embedding = state.embedding
                state.verified_area = max(state.verified_area, float(areas[r]))
        matches: list[list[Match]] = [
            self._tracks[int(tid)].matches if int(tid) in self._tracks else [] for tid in track_ids
        ]
        self.verify_calls += int(verified_now.sum())
        tracked = replace(det, tracker_id=track_ids)
        return FrameResult(tracked, matches, timer.seconds, verified_now)

    def _sub_config(self, config: PipelineConfig, crops: int) -> PipelineConfig:
        """The request's options for verifying ``crops`` tracks: the stream's shortlist and
        references per candidate."""
        # streams keep the embedding ranking (their own verification budget per frame)
        # unless a request asked for local ranking (docs/local-ranking.md)
        sub = replace(config, verify_crops=crops, rank=config.rank or "embedding")
        if self.config.shortlist is not None:
            sub = replace(sub, shortlist=min(config.shortlist, self.config.shortlist))
        if self.config.refs_per_item is not None:
            sub = replace(sub, refs_per_item=self.config.refs_per_item)
        return sub

    def _submit(
        self,
        track_ids: np.ndarray,
        embedded: list[int],
        areas: np.ndarray,
        index: int,
        crops: list[np.ndarray],
        catalog: CatalogView,
        config: PipelineConfig,
    ) -> None:
        """Hand the tracks due (and not already with the worker) to the worker, with their
        urgency: the verdicts come back through `_deliver`."""
        worker = self._worker
        if worker is None:
            return
        sub = self._sub_config(config, 1)
        for urgency, r in self._ranked_due(track_ids, embedded, areas, index):
            tid = int(track_ids[r])
            state = self._tracks[tid]
            self._inflight.add(tid)
            worker.submit(
                urgency=urgency,
                track_id=tid,
                frame=index,
                embedding=state.embedding,
                crop=crops[r],
                area=float(areas[r]),
                catalog=catalog,
                config=sub,
                deliver=self._deliver,
                on_drop=self._dropped,
            )

    def _deliver(self, verdict: Verdict) -> None:
        """From the worker thread: keep the verdict for the next frame."""
        with self._arrived_lock:
            self._arrived.append(verdict)

    def _dropped(self, track_id: int) -> None:
        """From the worker: a job dropped (full queue, failure); the track is due again."""
        with self._arrived_lock:
            self._arrived.append(Verdict(track_id, [], -1, np.empty(0, np.float32), 0.0, 0.0))

    def _apply_verdicts(self, index: int) -> set[int]:
        """Attach the verdicts that arrived since the last frame to their tracks (those still
        alive); returns their track ids. ``verdict_lags`` gets each one's delay in frames."""
        with self._arrived_lock:
            arrived, self._arrived = self._arrived, []
        applied = set()
        for verdict in arrived:
            self._inflight.discard(verdict.track_id)
            state = self._tracks.get(verdict.track_id)
            if state is None or verdict.frame < 0:
                continue  # the track ended meanwhile, or its job was dropped
            state.matches = verdict.matches
            state.verified_frame = verdict.frame
            state.verified_embedding = verdict.embedding
            state.verified_area = max(state.verified_area, verdict.area)
            self.verdict_lags.append(index - verdict.frame)
            applied.add(verdict.track_id)
        return applied

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until the worker has handed back every verdict queued so far (a video's
        end, tests); they are applied on the next frame."""
        if self._worker is not None:
            self._worker.idle(timeout)

    def _remember(
        self,
        track_ids: np.ndarray,
        rows: list[int],
        vectors: np.ndarray,
        crops: list[np.ndarray],
        catalog: CatalogView,
        config: PipelineConfig,
        index: int,
        timer: Timer,
    ) -> None:
        """Store the embeddings of ``rows`` (float32 (len(rows), D)) in their tracks' states;
        a track not verified yet gets (or refreshes) its ranked, unverified candidates."""
        pending = []
        for r, vector in zip(rows, vectors, strict=True):
            tid = int(track_ids[r])
            state = self._tracks.get(tid)
            if state is None:
                state = self._tracks[tid] = _TrackState(vector, index, [])
            state.embedding, state.checked_frame = vector, index
            if state.verified_frame is None:
                pending.append(r)
        if pending:
            unverified = replace(config, verify=False)
            answers = self.pipeline.match_vectors(
                np.stack([self._tracks[int(track_ids[r])].embedding for r in pending]),
                [crops[r] for r in pending],
                catalog,
                unverified,
                timer,
            )
            for r, answer in zip(pending, answers, strict=True):
                self._tracks[int(track_ids[r])].matches = answer

    def _restart(self) -> None:
        """Forget every track (new frame size); ids keep counting up."""
        ids = self._tracker._ids
        self._tracker = _bytetrack(self.config)
        self._tracker._ids = ids
        self._tracks.clear()
        self._unshown.clear()

    def _track(self, det: Detections) -> np.ndarray:
        """int64 (N,) track id per detection (``-1``: not a confirmed track this frame)."""
        out = np.full(len(det), -1, dtype=np.int64)
        boxes = _Boxes(det.xyxy, det.confidence, det.class_id.astype(np.float32))
        rows = self._tracker.update(boxes)
        self._tracker.removed_stracks = []  # ultralytics keeps 1000 per tracker; we need none
        for row in rows.reshape(-1, 8):
            out[int(row[7])] = int(row[4])
        alive = {t.track_id for t in self._tracker.tracked_stracks + self._tracker.lost_stracks}
        for tid in [t for t in self._tracks if t not in alive]:
            del self._tracks[tid]  # bounded memory: only live tracks keep a verdict
            self._unshown.discard(tid)
        return out

    def _to_embed(self, track_ids: np.ndarray, index: int) -> list[int]:
        """Rows to embed now: new tracks, and tracks last embedded ``check_every`` frames ago
        (the drift check; a pending track's ranked list is refreshed)."""
        rows = []
        for r, tid in enumerate(track_ids):
            if tid < 0:
                continue  # unconfirmed: matched once ByteTrack confirms it (next frame)
            state = self._tracks.get(int(tid))
            if state is None or index - state.checked_frame >= self.config.check_every:
                rows.append(r)
        return rows

    def _afford(self, due: list[int]) -> list[int]:
        """The most urgent of ``due`` that the time budget pays for this frame (all of them
        without a budget). Called once per frame: it also earns the frame's budget."""
        budget = self.config.verify_budget_ms
        if budget is None or not due:
            if budget is not None:
                self._credit_ms = min(self._credit_ms + budget, self.config.verify_burst_ms)
            return due
        self._credit_ms = min(self._credit_ms + budget, self.config.verify_burst_ms)
        if self._credit_ms <= 0.0:
            return []
        if self._call_ms <= 0.0:  # no estimate yet: one crop, to measure
            return due[:1]
        return due[: max(1, int(self._credit_ms // self._call_ms))]

    def _spend(self, ms: float, crops: int) -> None:
        """Account ``ms`` of verification spent on ``crops`` crops."""
        self._credit_ms -= ms
        per_crop = ms / max(1, crops)
        self._call_ms = per_crop if self._call_ms <= 0.0 else 0.8 * self._call_ms + 0.2 * per_crop

    def _due(
        self, track_ids: np.ndarray, embedded: list[int], areas: np.ndarray, index: int
    ) -> list[int]:
        """Rows due for verification now, most urgent first (see `_ranked_due`)."""
        return [r for _, r in self._ranked_due(track_ids, embedded, areas, index)]

    def _ranked_due(
        self, track_ids: np.ndarray, embedded: list[int], areas: np.ndarray, index: int
    ) -> list[tuple[float, int]]:
        """Rows whose track needs verification now, most urgent first, capped per frame.

        Pending tracks (never verified) come first, the one most similar to some catalog
        item first (the likeliest to be an item); then re-verifications: tracks verified
        ``reverify_frames`` ago, or whose embedding, taken this frame (rows ``embedded``),
        drifted below ``drift_cosine`` from the verified one; the most drifted, oldest first.
        A track is re-verified only from a view at least ``reverify_min_area`` of the largest
        area it was verified at: a car shrinking into the distance keeps the verdict of its
        best view (fewer pixels, less evidence) instead of being verified again and again.

        Args:
            track_ids: int64 (N,) of the frame.
            embedded: the rows embedded this frame.
            areas: float (N,) box areas in pixels.
        """
        cfg = self.config
        fresh = set(embedded)
        urgency: list[tuple[float, int]] = []
        for r, tid in enumerate(track_ids):
            state = self._tracks.get(int(tid)) if tid >= 0 else None
            if state is None or int(tid) in self._inflight:
                continue  # not a track, or the worker has it already
            if state.verified_frame is None:  # below -2: before any re-verification
                urgency.append((-10.0 - state.best_similarity, r))
                continue
            if areas[r] < cfg.reverify_min_area * state.verified_area:
                continue
            age = index - state.verified_frame
            cosine = float(np.dot(state.embedding, state.verified_embedding)) if r in fresh else 1.0
            if age >= cfg.reverify_frames or cosine < cfg.drift_cosine:
                urgency.append((1.0 + cosine - age / max(1, cfg.reverify_frames), r))
        urgency.sort()
        return urgency[: cfg.verify_per_frame]

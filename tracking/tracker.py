"""`TrackedMatcher`: one video stream's frames -> detections with track ids and cached verdicts.

Keypoint verification is the expensive stage (hundreds of ms per crop on a CPU), while an
object seen in consecutive frames is the same object. So per stream, detections are tracked
with ByteTrack (the implementation ultralytics ships) and a track is verified only:

- when it is new (its first frame as a confirmed track),
- every ``reverify_frames`` frames after its last verification,
- or when its embedding drifts: cosine to the embedding at its last verification falls below
  ``drift_cosine`` (the object turned, the tracker swapped it for another).

Between verifications the track's last verified answer (its ranked matches) is reused. Every
frame gets detection and tracking; a verified track is re-embedded (the drift check) only every
``check_every`` frames, so embedding costs scale with new tracks, not with frames. A detection
ByteTrack has not confirmed yet (``track_id`` -1, usually only its first frame) gets no
matches until it is confirmed.

The whole-frame row (class ``"image"``) is not tracked and not produced here: it has no
motion of its own and verifying it every frame is what tracking exists to avoid; clients
that want whole-frame matching call the detect endpoint on a keyframe.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace

import numpy as np

from core.runtime import prepare_environment
from detection.detections import Detections
from detection.detector import Detector
from matching.catalog_view import CatalogView
from matching.pipeline import Match, Pipeline, PipelineConfig, Timer


@dataclass(frozen=True)
class TrackerConfig:
    """Defaults of stream tracking; one per stream."""

    reverify_frames: int = 30  # re-verify a track this many frames after its last verification
    drift_cosine: float = 0.8  # re-verify when cosine to the last verified embedding is below
    check_every: int = 5  # embed a verified track (drift check) every this many frames
    verify_per_frame: int = 3  # most tracks verified in one frame (the rest wait a frame)
    imgsz: int | None = None  # detector input size for streams (None: the detector's own)
    track_high: float = 0.25  # ByteTrack: first-association score threshold
    track_low: float = 0.1  # ByteTrack: second-association (low score) threshold
    new_track: float = 0.25  # ByteTrack: score needed to start a track
    track_buffer: int = 30  # ByteTrack: frames a lost track is kept for re-finding
    match_iou: float = 0.8  # ByteTrack: association cost threshold (1 - IoU, score-fused)


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

    verified_frame: int  # the stream frame of its last verification
    checked_frame: int  # the stream frame it was last embedded (drift check)
    embedding: np.ndarray  # float32 (D,) at its last verification
    matches: list[Match]  # its last verified answer, best first


@dataclass
class TrackedFrame:
    """One frame of a stream, matched.

    Attributes:
        detections: the frame's detections (no whole-frame row), crops included.
        track_ids: int64 (N,) ByteTrack ids, ``-1`` for detections not (yet) tracked.
        matches: per detection, its candidates best first (a tracked detection's are its
            track's last verified answer).
        verified_now: bool (N,) whether keypoints were run on this detection in this frame.
        timings: seconds per stage.
    """

    detections: Detections
    track_ids: np.ndarray
    matches: list[list[Match]]
    verified_now: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verify_calls(self) -> int:
        """Crops keypoint-verified in this frame."""
        return int(self.verified_now.sum())


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
        self.frames = 0  # frames processed
        self.verify_calls = 0  # crops verified so far

    @property
    def open_tracks(self) -> int:
        """Tracks the stream currently remembers a verdict for."""
        return len(self._tracks)

    def process(
        self,
        frame: np.ndarray,
        catalog: CatalogView,
        config: PipelineConfig = PipelineConfig(),
    ) -> TrackedFrame:
        """Detect, track, embed, search, verify the tracks that need it.

        Args:
            frame: uint8 (H, W, 3) RGB; a frame of another size than the previous one
                restarts tracking (boxes of two sizes cannot be associated) with new ids.
            catalog: the catalog to search.
            config: per-request options (``top_k``, ``classes``, ``shortlist``, ``verify``);
                ``whole_frame`` is ignored (never tracked).

        Returns:
            A `TrackedFrame`.
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
        crops = list(det.data.get("crop", []))
        rows = self._to_embed(track_ids, index)
        with timer.stage("embed"):
            vectors = self.pipeline.embedder_for(catalog.kind).embed([crops[r] for r in rows])
        verify = config.verify and self.pipeline.verifier is not None
        due = self._due(track_ids, rows, vectors, index) if verify else []
        matches: list[list[Match]] = [[] for _ in range(len(det))]
        verified_now = np.zeros(len(det), dtype=bool)
        if due:
            sub = replace(config, verify_crops=len(due))
            picked = [rows.index(r) for r in due]
            answers = self.pipeline.match_vectors(
                vectors[picked], [crops[r] for r in due], catalog, sub, timer
            )
            for r, v, answer in zip(due, picked, answers, strict=True):
                matches[r] = answer
                verified_now[r] = True
                self._tracks[int(track_ids[r])] = _TrackState(index, index, vectors[v], answer)
        fresh = [i for i, r in enumerate(rows) if not verified_now[r]]
        if fresh:  # embedded but not verified now: a ranked list if the track has no verdict
            unverified = replace(config, verify=False)
            answers = self.pipeline.match_vectors(
                vectors[fresh], [crops[rows[i]] for i in fresh], catalog, unverified, timer
            )
            for i, answer in zip(fresh, answers, strict=True):
                r = rows[i]
                state = self._tracks.get(int(track_ids[r]))
                if state is None:
                    matches[r] = answer
                    if not verify:  # nothing to verify: the ranked list is the verdict
                        state = _TrackState(index, index, vectors[i], answer)
                        self._tracks[int(track_ids[r])] = state
                else:
                    state.checked_frame = index
        for r, tid in enumerate(track_ids):
            state = self._tracks.get(int(tid)) if tid >= 0 else None
            if not verified_now[r] and state is not None:
                matches[r] = state.matches
        self.verify_calls += int(verified_now.sum())
        return TrackedFrame(det, track_ids, matches, verified_now, timer.seconds)

    def _restart(self) -> None:
        """Forget every track (new frame size); ids keep counting up."""
        ids = self._tracker._ids
        self._tracker = _bytetrack(self.config)
        self._tracker._ids = ids
        self._tracks.clear()

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
        return out

    def _to_embed(self, track_ids: np.ndarray, index: int) -> list[int]:
        """Rows to embed now: tracks without a verdict, due for a drift check or a re-verify."""
        every = self.config.check_every
        rows = []
        for r, tid in enumerate(track_ids):
            if tid < 0:
                continue  # unconfirmed: matched once ByteTrack confirms it (next frame)
            state = self._tracks.get(int(tid))
            if (
                state is None
                or index - state.checked_frame >= every
                or index - state.verified_frame >= self.config.reverify_frames
            ):
                rows.append(r)
        return rows

    def _due(
        self, track_ids: np.ndarray, rows: list[int], vectors: np.ndarray, index: int
    ) -> list[int]:
        """Embedded rows whose track needs verification now, most urgent first, capped.

        Args:
            track_ids: int64 (N,) of the frame.
            rows: the embedded rows; ``vectors`` float32 (len(rows), D) their embeddings.
        """
        cfg = self.config
        urgency: list[tuple[float, int]] = []
        for r, vector in zip(rows, vectors, strict=True):
            state = self._tracks.get(int(track_ids[r]))
            if state is None:
                urgency.append((0.0, r))  # new tracks first
                continue
            age = index - state.verified_frame
            cosine = float(np.dot(vector, state.embedding))
            if age >= cfg.reverify_frames or cosine < cfg.drift_cosine:
                urgency.append((1.0 + cosine - age / max(1, cfg.reverify_frames), r))
        urgency.sort()
        return [r for _, r in urgency[: cfg.verify_per_frame]]

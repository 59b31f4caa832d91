"""A video file, frame by frame, through a `TrackedMatcher` (or the plain pipeline).

Used by the video endpoint (ndjson lines: `matching.report.video_lines`) and by
``bench.video``. Frames are decoded with OpenCV from a file (``cv2.VideoCapture`` needs a
path). Each processed frame is a `matching.result.FrameResult`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.errors import BadInput
from matching.catalog_view import CatalogView
from matching.pipeline import Pipeline, PipelineConfig
from matching.result import FrameResult
from tracking.tracker import TrackedMatcher


@dataclass
class Video:
    """An opened video file whose first frame decoded."""

    capture: cv2.VideoCapture
    fps: float
    frames: int  # as the container says (0 when unknown)
    first: np.ndarray  # uint8 (H, W, 3) RGB, frame 0

    def __iter__(self) -> Iterator[np.ndarray]:
        """Frames as uint8 (H, W, 3) RGB, from frame 0; releases the capture at the end."""
        try:
            yield self.first
            while True:
                ok, bgr = self.capture.read()
                if not ok:
                    return
                yield np.ascontiguousarray(bgr[..., ::-1])
        finally:
            self.capture.release()


def open_video(path: Path) -> Video:
    """Open a video file and decode its first frame.

    Raises:
        BadInput: OpenCV cannot open the file or decode a first frame (not a video, truncated,
            unknown codec).
    """
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read() if capture.isOpened() else (False, None)
    if not ok or bgr is None:
        capture.release()
        raise BadInput(
            "the video cannot be decoded (not a video file, truncated, or a codec OpenCV "
            "lacks); send an MP4 (H.264 or MPEG-4 part 2)"
        )
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 0.0
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    first = np.ascontiguousarray(bgr[..., ::-1])
    return Video(capture, fps if fps > 0 else 30.0, max(frames, 0), first)


@dataclass
class FrameRecord:
    """One processed frame of a video."""

    index: int
    result: FrameResult  # tracked (detections with tracker_id) or, without a matcher, not
    seconds: float  # wall-clock of this frame (decode excluded)
    frame: np.ndarray | None = None  # uint8 (H, W, 3) RGB: the frame itself


@dataclass
class VideoStats:
    """Totals over a processed video."""

    frames: int = 0
    verify_calls: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)


def run_video(
    frames: Iterator[np.ndarray],
    catalog: CatalogView,
    config: PipelineConfig,
    *,
    matcher: TrackedMatcher | None = None,
    pipeline: Pipeline | None = None,
    stride: int = 1,
    limit: int | None = None,
    stats: VideoStats | None = None,
    lock=None,
) -> Iterator[FrameRecord]:
    """Process a video's frames one at a time.

    Args:
        frames: uint8 (H, W, 3) RGB frames in order.
        matcher: track with this matcher; else ``pipeline`` matches every frame untracked.
        stride: process every ``stride``-th frame (the others are decoded and skipped).
        limit: stop after this many decoded frames.
        stats: totals are accumulated here.
        lock: a context manager held around each frame's model calls (the worker's queue).
    """
    if matcher is None and pipeline is None:
        raise BadInput("run_video needs a matcher or a pipeline")
    stats = stats if stats is not None else VideoStats()
    for index, frame in enumerate(frames):
        if limit is not None and index >= limit:
            break
        if index % max(1, stride):
            continue
        start = time.perf_counter()
        if lock is not None:
            with lock:
                result = _one(frame, catalog, config, matcher, pipeline)
        else:
            result = _one(frame, catalog, config, matcher, pipeline)
        seconds = time.perf_counter() - start
        stats.frames += 1
        stats.verify_calls += result.verify_calls
        stats.seconds += seconds
        for k, v in result.timings.items():
            stats.stages[k] = stats.stages.get(k, 0.0) + v
        yield FrameRecord(index, result, seconds, frame)


def _one(frame, catalog, config, matcher, pipeline) -> FrameResult:
    """A frame through the matcher, or else through the plain pipeline (no tracking, every
    frame verified: the baseline tracking is measured against)."""
    if matcher is not None:
        return matcher.process(frame, catalog, config)
    return pipeline.match_frames([frame], catalog, config)[0]

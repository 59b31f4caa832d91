"""Live video: frames of a stream with tracking, and whole video files.

A stream is (tenant, catalog, stream id) and lives in the worker that received its frames
(see `tracking.streams`). A video is matched frame by frame with tracking, as the caller
reads its records.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from catalog.repository import new_id
from catalog.videos import VIDEO_PREFIX, check_video_key
from core.errors import BadInput, Forbidden, TooLarge
from labels.result import LabelResult
from matching.catalog_view import CatalogView
from matching.pipeline import Timer
from matching.report import video_lines
from matching.result import FrameResult
from service.access import Caller, catalog_for_matching
from service.jobs import submit_job
from service.labels import check_label_source, frame_labels, label_source
from service.options import StreamOptions, VideoOptions
from service.sightings import keep_tracks, wants_keep
from service.state import SightingState
from sightings.keep import TrackKeeper
from sightings.model import SightingSource
from tracking.streams import check_stream_id
from tracking.tracker import TrackedMatcher, TrackerConfig
from tracking.video import Video, VideoStats, open_video, run_video


@dataclass
class StreamAnswer:
    """One processed frame of a stream."""

    stream_id: str
    frame_index: int
    result: FrameResult  # timings: seconds per stage, the edge's own stages included
    labels: list[LabelResult | None] | None  # per detection; None: not asked
    catalog_version: int
    sighting_ids: list[str] | None = None  # tracks kept or updated (keep); None: not asked


@dataclass(frozen=True)
class OpenStream:
    id: str
    catalog: str
    frames: int
    last_frame_index: int | None
    idle_s: float
    last_seen: float  # unix time
    tracks: int
    verify_calls: int


def stream_frame(
    s: SightingState,
    caller: Caller,
    catalog_id: str,
    stream_id: str,
    pixels: np.ndarray,
    options: StreamOptions,
    client: str | None = None,
    timer: Timer | None = None,
) -> StreamAnswer:
    """One frame of a live stream: detections with track ids and (cached) matches; the stream
    opens on its first frame. ``client`` names the sender (X-Stream-Client). 409 for a frame
    index that does not move forward or another client (two senders on one stream id)."""
    timer = timer or Timer()
    check_stream_id(stream_id)
    view = catalog_for_matching(s, caller, catalog_id)
    asked = label_source(options)
    check_label_source(s, asked)
    stream = s.streams.open((caller.tenant, catalog_id, stream_id), client)
    with stream.lock:  # one frame of a stream at a time, in order
        index = stream.accept(options.frame_index, client)
        with s.model_lock:
            result = stream.matcher.process(pixels, view, options.config(s.settings))
        stream.last_index = index
        if stream.client is None:
            stream.client = client
        labels = None
        if asked is not None:  # each track labelled once, when first seen
            with timer.stage("labels"):
                labels = frame_labels(s, caller, result, asked, stream.labels)
        kept = None
        if wants_keep(s, options.keep):  # one sighting per track: its best view
            if stream.keeper is None:
                stream.keeper = TrackKeeper()
            source = SightingSource("stream", stream_id=stream_id, frame_index=index)
            keeper = stream.keeper
            kept = keep_tracks(s, caller, view, keeper, result, pixels, source).sighting_ids
    result.timings = timer.seconds | result.timings
    return StreamAnswer(stream_id, index, result, labels, view.version, kept)


def close_stream(s: SightingState, caller: Caller, catalog_id: str, stream_id: str) -> None:
    """Close a stream of this worker and forget its tracks (404 if it is not open)."""
    check_stream_id(stream_id)
    s.streams.close((caller.tenant, catalog_id, stream_id))


def list_streams(s: SightingState, caller: Caller) -> list[OpenStream]:
    """The caller's open streams on this worker (an admin's: every stream)."""
    now = s.streams.clock()
    return [
        OpenStream(
            id=st.key[2],
            catalog=st.key[1],
            frames=st.matcher.frames,
            last_frame_index=st.last_index,
            idle_s=round(now - st.last_seen, 3),
            last_seen=round(time.time() - (now - st.last_seen), 3),
            tracks=st.matcher.open_tracks,
            verify_calls=st.matcher.verify_calls,
        )
        for st in s.streams.of_tenant(caller.scope)
    ]


def copy_stored_video(s: SightingState, caller: Caller, key: str | None) -> Path:
    """Copy a stored video (``videos/...``) to a temp file; returns its path (the caller
    deletes it). Naming a stored video is an operator's act: it needs an admin key when API
    keys are configured, and nothing but ``videos/`` can be named."""
    if s.settings.auth_enabled and not caller.admin:
        raise Forbidden("naming a stored video needs an admin key; upload the video instead")
    if key is None:
        raise BadInput(f'JSON body must be {{"key": "{VIDEO_PREFIX}..."}}, a stored video')
    key = check_video_key(key)
    fd, path = tempfile.mkstemp(suffix=".video")
    try:
        with os.fdopen(fd, "wb") as f:
            s.repository.store.copy_to(key, f, limit=s.settings.max_video_bytes)
    except BaseException:
        os.unlink(path)
        raise
    return Path(path)


@dataclass
class VideoRun:
    """A video being matched: iterate `records` (frame index, result), then read `stats`.
    The video's temp file is deleted when the records end (or are closed)."""

    video: Video
    view: CatalogView
    path: Path
    records: Iterator[tuple[int, FrameResult]]
    stats: VideoStats = field(default_factory=VideoStats)
    sighting_ids: list[str] | None = None  # with keep: one per track, filled as it runs
    annotation_job: str | None = None  # with annotate: the job drawing it, once all is read

    @property
    def fps(self) -> float:
        return self.video.fps


#: where an annotated video's input waits for its job (deleted by the job): video and lines
ANNOTATE_PREFIX = "uploads/"
ANNOTATE_KIND = "videos"  # the job kind (`videos.job`): draws the lines on the video's frames


def _annotation_job(
    s: SightingState, caller: Caller, run: VideoRun, catalog_id: str, stride: int, lines: list
) -> str:
    """Store the video and its lines, queue the job that draws them; its id."""
    prefix = f"{ANNOTATE_PREFIX}{new_id()}/"
    store = s.repository.store
    store.put(prefix + "video", run.path.read_bytes())
    store.put(prefix + "lines.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode())
    params = {"prefix": prefix, "catalog_id": catalog_id, "fps": run.fps, "stride": stride}
    return submit_job(s, caller, ANNOTATE_KIND, params).job_id


def process_video(
    s: SightingState,
    caller: Caller,
    catalog_id: str,
    source: Callable[[], Path],
    options: VideoOptions,
) -> VideoRun:
    """Open a video to match it whole with tracking. ``source()`` writes the video to a temp
    file and returns its path (called once the catalog is known to be usable; the file then
    belongs to the run). 422 for a file OpenCV cannot decode (the file is deleted)."""
    view = catalog_for_matching(s, caller, catalog_id)
    path = source()
    try:
        if options.annotate and path.stat().st_size > s.settings.max_body_bytes:
            raise TooLarge(
                f"annotate=true takes videos up to SIGHTING_MAX_BODY_BYTES "
                f"({s.settings.max_body_bytes} bytes); this one has {path.stat().st_size}: "
                "send it without annotate, or cut it"
            )
        video = open_video(path)
    except BaseException:
        os.unlink(path)
        raise
    tconfig = TrackerConfig.from_settings(s.settings, s.settings.video_imgsz)
    matcher = TrackedMatcher(s.pipeline, tconfig)
    stats = VideoStats()
    keeper = TrackKeeper() if wants_keep(s, options.keep) else None
    kept: list[str] = []
    lines: list[dict] | None = [] if options.annotate else None

    def records() -> Iterator[tuple[int, FrameResult]]:
        try:
            for record in run_video(
                iter(video),
                view,
                options.config(s.settings),
                matcher=matcher,
                stride=options.stride,
                stats=stats,
                lock=s.model_lock,
            ):
                if keeper is not None:  # one sighting per track: its best view
                    source = SightingSource("video", frame_index=record.index)
                    ids = keep_tracks(s, caller, view, keeper, record.result, record.frame, source)
                    kept.extend(i for i in ids.sighting_ids if i not in kept)
                if lines is not None:
                    lines.extend(video_lines(record.result, record.index, video.fps))
                yield record.index, record.result
            if lines is not None:  # every frame read: the annotated video is drawn by a job
                run.annotation_job = _annotation_job(
                    s, caller, run, catalog_id, options.stride, lines
                )
        finally:
            video.capture.release()
            os.unlink(path)

    run = VideoRun(video, view, path, records(), stats, kept if keeper is not None else None)
    return run

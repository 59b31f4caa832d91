"""Verification off the frame path: the frame answers at once, the verdict (the same one the
in-request path gives) shows on a later frame carrying the track, and the queue is bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.images import read_image
from matching.folder_catalog import load_folder_catalog
from matching.pipeline import PipelineConfig
from tracking.tracker import TrackedMatcher, TrackerConfig
from tracking.verify_worker import VerificationWorker

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
CHEAP = PipelineConfig(classes=("person",), shortlist=1, refs_per_item=1)


@pytest.fixture(scope="module")
def catalog(pipeline):
    return load_folder_catalog(pipeline, VIDEO / "coke-shelf-catalog", progress=False)


@pytest.fixture(scope="module")
def bus(ultralytics_assets: Path) -> np.ndarray:
    img = read_image(ultralytics_assets / "bus.jpg")
    return cv2.resize(img, (360, round(img.shape[0] * 360 / img.shape[1])))


def _by_box(result) -> dict[tuple, list]:
    return {
        tuple(np.round(box).astype(int)): [(m.item_id, round(m.score, 4), m.verified) for m in ms]
        for box, ms, now in zip(
            result.detections.xyxy, result.matches, result.verified_now, strict=True
        )
        if now
    }


def test_the_verdict_arrives_on_a_later_frame_and_is_the_same(pipeline, catalog, bus) -> None:
    knobs = dict(reverify_frames=1000, verify_per_frame=2, verify_budget_ms=None)
    sync = TrackedMatcher(pipeline, TrackerConfig(**knobs, async_verify=False))
    expected = _by_box(sync.process(bus, catalog, CHEAP))
    assert len(expected) == 2

    matcher = TrackedMatcher(pipeline, TrackerConfig(**knobs, async_verify=True))
    first = matcher.process(bus, catalog, CHEAP)
    assert not first.verified_now.any()  # the frame did not wait for keypoints
    assert "verify" not in first.timings
    tracked = first.track_ids >= 0
    assert tracked.sum() >= 3
    for r in np.flatnonzero(tracked):  # meanwhile: the ranked candidates, unverified
        assert first.matches[r] and not any(m.verified for m in first.matches[r])
    matcher.drain()
    second = matcher.process(bus, catalog, CHEAP)
    assert second.verified_now.sum() == 2  # the two most promising, as in the request path
    assert _by_box(second) == expected  # nothing about a verdict changes, only when
    assert matcher.verdict_lags == [1, 1]
    matcher.drain()
    later = [matcher.process(bus, catalog, CHEAP) for _ in range(3)]
    # every track gets its verdict once; the cached one is shown on the frames after
    tracks = {int(t) for r in [first, second, *later] for t in r.track_ids if t >= 0}
    for _ in range(5):
        matcher.drain()
        later.append(matcher.process(bus, catalog, CHEAP))
    assert matcher.verify_calls == len(tracks)
    assert not later[-1].verified_now.any()


class _Recorder:
    """A stand-in for `Pipeline` recording the order the worker verifies in (the worker's
    queue is what is tested; the real pipeline is in the test above)."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.order: list[int] = []

    def match_vectors(self, vectors, crops, catalog, config, timer):
        self.gate.wait(10)
        self.order.append(int(vectors[0, 0]))
        return [[]]


class _Stream:
    def __init__(self) -> None:
        self.verdicts, self.dropped = [], []

    def deliver(self, verdict) -> None:
        self.verdicts.append(verdict)

    def drop(self, track_id: int) -> None:
        self.dropped.append(track_id)


def _submit(worker: VerificationWorker, stream: _Stream, track: int, urgency: float) -> None:
    worker.submit(
        urgency=urgency,
        track_id=track,
        frame=0,
        embedding=np.full(4, track, np.float32),
        crop=np.zeros((8, 8, 3), np.uint8),
        area=64.0,
        catalog=None,
        config=CHEAP,
        deliver=stream.deliver,
        on_drop=stream.drop,
    )


def test_queue_runs_most_promising_first_and_drops_the_least_when_full() -> None:
    gate = threading.Event()
    recorder = _Recorder(gate)
    worker = VerificationWorker(recorder, capacity=3)
    stream = _Stream()
    try:
        _submit(worker, stream, 0, 0.0)  # taken at once; blocks on the gate
        time.sleep(0.2)
        for track, urgency in [(1, 5.0), (2, -3.0), (3, 1.0), (4, 9.0)]:
            _submit(worker, stream, track, urgency)
        assert stream.dropped == [4]  # the least promising, over capacity; due again later
        gate.set()
        assert worker.idle(10)
        assert recorder.order == [0, 2, 3, 1]
        assert sorted(v.track_id for v in stream.verdicts) == [0, 1, 2, 3]
    finally:
        gate.set()
        worker.close()


def test_a_closed_streams_jobs_are_skipped() -> None:
    gate = threading.Event()
    recorder = _Recorder(gate)
    worker = VerificationWorker(recorder)
    stream = _Stream()
    try:
        _submit(worker, stream, 0, 0.0)
        time.sleep(0.2)
        gone = _Stream()
        _submit(worker, gone, 7, 1.0)
        del gone  # the stream closed: its matcher is gone
        gate.set()
        assert worker.idle(10)
        assert recorder.order == [0]
    finally:
        gate.set()
        worker.close()

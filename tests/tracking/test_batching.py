"""The cross-stream batch collector (the GPU path's batching, run here on the CPU): concurrent
frames of several streams run as one detector batch, each stream gets its own answer, equal to
the one it gets alone; a full batch does not wait out the window; errors reach every caller."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.images import read_image
from tracking.batching import BatchCollector


@pytest.fixture(scope="module")
def frames(ultralytics_assets: Path) -> list[np.ndarray]:
    """Four 'streams': bus.jpg and zidane.jpg at 320 px, and both mirrored."""
    out = []
    for name in ("bus.jpg", "zidane.jpg"):
        img = read_image(ultralytics_assets / name)
        img = cv2.resize(img, (320, round(img.shape[0] * 320 / img.shape[1])))
        out += [img, np.ascontiguousarray(img[:, ::-1])]
    return out


def _concurrently(collector: BatchCollector, items: list) -> list:
    results: list = [None] * len(items)
    errors: list = []
    start = threading.Barrier(len(items))

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = collector.submit(items[i])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_streams_frames_detected_as_one_batch_with_their_own_answers(pipeline, frames) -> None:
    detector = pipeline.detector
    alone = [detector.detect([f])[0] for f in frames]
    collector = BatchCollector(detector.detect, window_ms=2000, max_batch=len(frames))
    batched = _concurrently(collector, frames)
    assert collector.batch_sizes == [len(frames)]  # full: ran before the 2 s window ended
    for one, together in zip(alone, batched, strict=True):
        np.testing.assert_array_equal(together.class_id, one.class_id)
        np.testing.assert_allclose(together.xyxy, one.xyxy, atol=1e-3)


def test_window_zero_runs_each_alone_and_errors_reach_every_caller() -> None:
    seen: list[int] = []

    def run(items):
        seen.append(len(items))
        return [i * 2 for i in items]

    alone = BatchCollector(run, window_ms=0, max_batch=8)
    assert [alone.submit(i) for i in range(3)] == [0, 2, 4] and seen == [1, 1, 1]

    def broken(items):
        raise RuntimeError("model failed")

    collector = BatchCollector(broken, window_ms=200, max_batch=3)
    with pytest.raises(RuntimeError, match="model failed"):
        _concurrently(collector, [1, 2, 3])
    overflow = BatchCollector(run, window_ms=100, max_batch=2)
    assert sorted(_concurrently(overflow, [1, 2, 3, 4, 5])) == [2, 4, 6, 8, 10]
    assert sum(overflow.batch_sizes) == 5 and max(overflow.batch_sizes) <= 2

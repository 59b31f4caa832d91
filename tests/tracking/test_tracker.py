"""TrackedMatcher: verification reused along tracks, stable ids, frame-size changes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.images import read_image
from matching.folder_catalog import load_folder_catalog
from matching.pipeline import PipelineConfig
from tracking.tracker import TrackedMatcher, TrackerConfig

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


@pytest.fixture(scope="module")
def catalog(pipeline):
    """The coke-shelf catalog (5 items, 10 crops), described once (disk-cached)."""
    return load_folder_catalog(pipeline, VIDEO / "coke-shelf-catalog", progress=False)


@pytest.fixture(scope="module")
def bus(ultralytics_assets: Path) -> np.ndarray:
    """bus.jpg at 360 px wide: a bus and people."""
    img = read_image(ultralytics_assets / "bus.jpg")
    return cv2.resize(img, (360, round(img.shape[0] * 360 / img.shape[1])))


def shifted(image: np.ndarray, dx: int) -> np.ndarray:
    """The image moved ``dx`` pixels right (edge pixels repeated), like a slow pan."""
    m = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(
        image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE
    )


def test_static_sequence_verifies_each_track_once(pipeline, catalog, bus) -> None:
    matcher = TrackedMatcher(
        pipeline,
        TrackerConfig(
            reverify_frames=100, verify_per_frame=2, verify_budget_ms=None, async_verify=False
        ),
    )
    frames = 6
    config = PipelineConfig(classes=("person",), shortlist=1, refs_per_item=1)  # cheap verify
    results = [matcher.process(bus, catalog, config) for _ in range(frames)]
    tracks = {int(t) for r in results for t in r.track_ids if t >= 0}
    assert len(tracks) >= 3
    # every track verified once (new), never again while nothing changes
    assert matcher.verify_calls == len(tracks)
    assert matcher.verify_calls < frames * len(tracks) / 3
    assert results[0].verify_calls == 2  # capped per frame; the rest come next frame
    assert not results[-1].verified_now.any()
    last = results[-1]
    for r, tid in enumerate(last.track_ids):  # the cached verdict is reused on later frames
        if tid >= 0:
            assert last.matches[r], f"track {tid} has no matches on a later frame"


def test_reverify_after_n_frames(pipeline, catalog, bus) -> None:
    config = PipelineConfig(classes=("bus",), shortlist=1, refs_per_item=1)
    matcher = TrackedMatcher(
        pipeline, TrackerConfig(reverify_frames=2, verify_budget_ms=None, async_verify=False)
    )
    calls = [matcher.process(bus, catalog, config).verify_calls for _ in range(3)]
    assert calls == [1, 0, 1]


@pytest.mark.parametrize("step", [0, 4])  # static, a pan (pixels per frame)
def test_track_ids_stable(pipeline, catalog, bus, step: int) -> None:
    matcher = TrackedMatcher(pipeline)
    off = PipelineConfig(verify=False)
    ids = []
    for i in range(4):
        r = matcher.process(shifted(bus, i * step), catalog, off)
        ids.append(sorted(int(t) for t in r.track_ids if t >= 0))
    assert len(ids[0]) >= 3
    # no new ids (a missed detection may drop a frame, but never comes back renamed)
    assert all(set(frame_ids) <= set(ids[0]) for frame_ids in ids[1:]), ids
    assert len(set.intersection(*map(set, ids))) >= 2, ids


def test_frame_size_change_restarts_tracks(pipeline, catalog, bus) -> None:
    matcher = TrackedMatcher(pipeline)
    off = PipelineConfig(verify=False)
    first = matcher.process(bus, catalog, off)
    small = cv2.resize(bus, (256, round(bus.shape[0] * 256 / bus.shape[1])))
    second = matcher.process(small, catalog, off)
    assert len(second.detections) and (second.detections.xyxy[:, 2] <= 256).all()
    old, new = (
        set(first.track_ids[first.track_ids >= 0]),
        set(second.track_ids[second.track_ids >= 0]),
    )
    assert new and not (old & new) and min(new) > max(old)  # fresh ids, never reused


def test_empty_frame(pipeline, catalog) -> None:
    matcher = TrackedMatcher(pipeline)
    r = matcher.process(np.zeros((96, 128, 3), dtype=np.uint8), catalog, PipelineConfig())
    assert len(r.detections) == 0 and r.track_ids.shape == (0,) and r.matches == []


def test_budget_defers_verification_and_shows_ranked_candidates(pipeline, catalog, bus) -> None:
    """A tiny time budget: one crop now (to measure), the rest wait and are paid for later;
    the waiting tracks show their unverified ranked list, and none is verified twice."""
    config = PipelineConfig(classes=("person",))
    matcher = TrackedMatcher(
        pipeline, TrackerConfig(verify_budget_ms=1.0, reverify_frames=1000, async_verify=False)
    )
    first = matcher.process(bus, catalog, config)
    tracked = first.track_ids >= 0
    assert tracked.sum() >= 3 and first.verify_calls == 1
    for r in np.flatnonzero(tracked & ~first.verified_now):
        assert first.matches[r] and not any(m.checked for m in first.matches[r])
    second = matcher.process(bus, catalog, config)
    assert second.verify_calls == 0  # the first crop's cost (>> 1 ms) is being paid back
    unlimited = TrackedMatcher(
        pipeline, TrackerConfig(reverify_frames=1000, verify_budget_ms=None, async_verify=False)
    )
    both = [unlimited.process(bus, catalog, config) for _ in range(3)]
    assert sum(f.verify_calls for f in both) == len({int(t) for t in both[0].track_ids if t >= 0})


def test_new_tracks_verified_most_similar_first(pipeline, catalog, bus) -> None:
    config = PipelineConfig(classes=("person",))
    matcher = TrackedMatcher(
        pipeline,
        TrackerConfig(
            verify_per_frame=1, reverify_frames=1000, verify_budget_ms=None, async_verify=False
        ),
    )
    first = matcher.process(bus, catalog, config)
    rows = np.flatnonzero(first.track_ids >= 0)
    best = {int(r): max(m.similarity for m in first.matches[r]) for r in rows if first.matches[r]}
    (chosen,) = np.flatnonzero(first.verified_now)
    # the verified one was the most similar of the pending tracks (its ranked list is shown
    # to the others; the verified one's list is re-scored, similarities unchanged)
    assert best[int(chosen)] == pytest.approx(max(best.values()), abs=1e-5)


def scaled(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` shrunk by ``factor`` about its centre, on a grey canvas of the same size."""
    h, w = image.shape[:2]
    m = np.float32([[factor, 0, (1 - factor) * w / 2], [0, factor, (1 - factor) * h / 2]])
    return cv2.warpAffine(image, m, (w, h), borderValue=(114, 114, 114))


def test_shrinking_track_keeps_its_best_views_verdict(pipeline, catalog, bus) -> None:
    """Re-verification (due every frame here) stops once the view is under half the area of
    the largest view verified: fewer pixels cannot add evidence."""
    config = PipelineConfig(classes=("bus",), shortlist=1, refs_per_item=1)
    matcher = TrackedMatcher(
        pipeline, TrackerConfig(reverify_frames=1, verify_budget_ms=None, async_verify=False)
    )
    results = [matcher.process(scaled(bus, f), catalog, config) for f in (1.0, 0.9, 0.8, 0.6)]
    ids = [{int(t) for t in r.track_ids if t >= 0} for r in results]
    assert len(ids[0]) == 1 and all(i == ids[0] for i in ids), ids  # one bus, one id
    assert [r.verify_calls for r in results] == [1, 1, 1, 0]  # areas 1, 0.81, 0.64, 0.36
    assert results[-1].matches[int(np.flatnonzero(results[-1].track_ids >= 0)[0])]


def test_config_from_settings_and_defaults_from_settings() -> None:
    """`Settings` is the one table of the tracking knobs it has: TrackerConfig's defaults are
    its defaults, `from_settings` its values (0 ms budget and 0 px size: none)."""
    from core.settings import Settings

    default = {name: f.default for name, f in Settings.model_fields.items()}
    config = TrackerConfig()
    assert (config.reverify_frames, config.drift_cosine, config.shortlist) == (
        default["reverify_frames"],
        default["drift_cosine"],
        default["stream_shortlist"],
    )
    assert config.verify_budget_ms == default["verify_budget_ms"] == 40.0
    settings = Settings(reverify_frames=7, drift_cosine=0.5, verify_budget_ms=0, stream_shortlist=3)
    got = TrackerConfig.from_settings(settings, 416)
    assert (got.reverify_frames, got.drift_cosine, got.verify_budget_ms, got.shortlist) == (
        7,
        0.5,
        None,
        3,
    )
    assert got.imgsz == 416 and TrackerConfig.from_settings(settings).imgsz is None

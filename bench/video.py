"""Server-side video matching, with tracking on and off: speed, verification calls, accuracy.

    python -m bench.video VIDEO --catalog DIR [--frames N] [--stride S] [--baseline-frames M]

Runs in-process (no HTTP) through `tracking.video.run_video`: first with tracking (ByteTrack,
one verification per new track, re-verified every ``--reverify`` frames or on embedding
drift), then without (every frame through `Pipeline.match_frames`, up to ``verify_crops``
verifications per frame) on the first ``--baseline-frames`` processed frames (the untracked
run is slow by design). Both use the same detector size (``--imgsz``) and no whole-frame row.

Prints frames/s end to end (decode included), per-stage milliseconds per frame, verification
calls per frame, and, when ``<clip>.json`` lies beside the video (see shared/data/video):
- per item, the share of its in-view frames (frames of its shots, minus its crops' frames
  +-5) where some detection's top match is the item (``any``), and where it is verified;
- track id switches: distinct track ids whose top match was the item, per shot;
- false confirmations: frames where the item is verified outside its shots.
The last line is ``fps=F verify_per_frame_tracking=A verify_per_frame_no_tracking=B frames=N``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from bench.machine import describe
from core.settings import get_settings
from matching.engine import load_pipeline
from matching.folder_catalog import load_folder_catalog
from matching.pipeline import PipelineConfig
from tracking.tracker import TrackedMatcher, TrackerConfig
from tracking.video import FrameRecord, VideoStats, open_video, run_video

MARGIN = 5  # frames around a catalog crop's own frame left out of the scoring


def shot_of(frame: int, shots: dict[str, list[int]]) -> str | None:
    """The shot a frame belongs to."""
    for name, (lo, hi) in shots.items():
        if lo <= frame <= hi:
            return name
    return None


def score(records: list[FrameRecord], truth: dict) -> list[str]:
    """Accuracy lines of one run against the clip's JSON."""
    shots = truth.get("shots", {})
    found: dict[str, set[int]] = defaultdict(set)  # item -> frames where it is a top match
    verified: dict[str, set[int]] = defaultdict(set)
    tracks: dict[tuple[str, str], set[int]] = defaultdict(set)  # (item, shot) -> track ids
    processed = {r.index for r in records}
    for rec in records:
        res = rec.result
        for i, matches in enumerate(res.matches):
            if not matches:
                continue
            best = matches[0]
            found[best.item_id].add(rec.index)
            if best.verified:
                verified[best.item_id].add(rec.index)
            tid = int(res.track_ids[i])
            shot = shot_of(rec.index, shots)
            if tid >= 0 and shot is not None:
                tracks[(best.item_id, shot)].add(tid)
    lines = []
    for item, info in truth.get("items", {}).items():
        own = {c["frame"] + d for c in info["crops"] for d in range(-MARGIN, MARGIN + 1)}
        in_view = {
            f
            for s in info["shots"]
            for f in range(shots[s][0], shots[s][1] + 1)
            if f in processed and f not in own
        }
        outside = {f for f in processed if shot_of(f, shots) not in info["shots"]}
        n = max(1, len(in_view))
        switches = {s: len(tracks.get((item, s), ())) for s in info["shots"]}
        lines.append(
            f"  {item:28s} in-view={len(in_view):4d} any={len(found[item] & in_view) / n:6.1%} "
            f"verified={len(verified[item] & in_view) / n:6.1%} "
            f"false_confirmed_outside={len(verified[item] & outside):3d} "
            f"track_ids_per_shot={switches}"
        )
    return lines


def run(
    video_path: Path, catalog, pipeline, config: PipelineConfig, args, tracking: bool, limit: int
) -> tuple[list[FrameRecord], VideoStats, float]:
    """One pass over the clip; returns its records, totals and wall-clock seconds."""
    video = open_video(video_path)
    matcher = None
    if tracking:
        tconfig = TrackerConfig(reverify_frames=args.reverify, imgsz=args.imgsz or None)
        matcher = TrackedMatcher(pipeline, tconfig)
    stats = VideoStats()
    start = time.perf_counter()
    records = list(
        run_video(
            iter(video),
            catalog,
            config,
            matcher=matcher,
            pipeline=pipeline,
            stride=args.stride,
            limit=limit,
            stats=stats,
        )
    )
    return records, stats, time.perf_counter() - start


def report(name: str, stats: VideoStats, wall: float) -> float:
    """Print one run's speed lines; returns verification calls per frame."""
    n = max(1, stats.frames)
    per = stats.verify_calls / n
    stages = " ".join(f"{k}={v * 1000 / n:.1f}" for k, v in sorted(stats.stages.items()))
    print(
        f"{name}: frames={stats.frames} end_to_end_fps={stats.frames / wall:.2f} "
        f"verify_calls={stats.verify_calls} verify_per_frame={per:.3f}"
    )
    print(f"  ms/frame: {stages} decode+rest={(wall - stats.seconds) * 1000 / n:.1f}")
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=None, help="decode at most N frames")
    parser.add_argument("--stride", type=int, default=1, help="process every S-th frame")
    parser.add_argument(
        "--baseline-frames", type=int, default=30, help="frames of the untracked run"
    )
    parser.add_argument("--imgsz", type=int, default=416, help="detector size (0: its own)")
    parser.add_argument("--reverify", type=int, default=30, help="frames between re-verifications")
    args = parser.parse_args()

    settings = get_settings()
    pipeline = load_pipeline(settings)
    catalog = load_folder_catalog(pipeline, args.catalog)
    if args.imgsz:
        from dataclasses import replace

        from detection.detector import Detector

        det = pipeline.detector
        pipeline.detector = Detector(
            det.backend, replace(det.config, imgsz=args.imgsz), det.fingerprint
        )
    config = PipelineConfig(whole_frame=False, shortlist=settings.shortlist)
    truth_path = args.video.with_suffix(".json")
    truth = json.loads(truth_path.read_text()) if truth_path.is_file() else None
    print(describe(settings))
    print(
        f"video={args.video.name} catalog={args.catalog} imgsz={args.imgsz} stride={args.stride} "
        f"reverify={args.reverify} detector={settings.detector} embedder={settings.embedder} "
        f"verifier={settings.verifier}"
    )

    records, stats, wall = run(args.video, catalog, pipeline, config, args, True, args.frames)
    with_tracking = report("tracking", stats, wall)
    if truth:
        print("tracking accuracy (frames processed only):")
        print("\n".join(score(records, truth)))
    fps = stats.frames / wall

    limit = args.baseline_frames * args.stride
    if args.frames is not None:
        limit = min(limit, args.frames)
    base_records, base_stats, base_wall = run(
        args.video, catalog, pipeline, config, args, False, limit
    )
    without = report("no_tracking", base_stats, base_wall)
    if truth:
        print("no-tracking accuracy (its frames only):")
        print("\n".join(score(base_records, truth)))
    if without > 0 and with_tracking > 0:
        print(f"verification cut: {without / with_tracking:.1f}x fewer calls per frame")
    print(
        f"fps={fps:.2f} verify_per_frame_tracking={with_tracking:.3f} "
        f"verify_per_frame_no_tracking={without:.3f} frames={stats.frames}"
    )


if __name__ == "__main__":
    main()

"""Server-side video matching, with tracking on and off: speed, verification calls, accuracy.

    python -m bench.video VIDEO --catalog DIR [--kind K] [--calibrate] [--frames N] [--stride S]
        [--baseline-frames M]

Runs in-process (no HTTP) through `tracking.video.run_video`: first with tracking (ByteTrack,
one verification per new track, re-verified every ``--reverify`` frames or on embedding
drift), then without (every frame through `Pipeline.match_frames`, up to ``verify_crops``
verifications per frame) on the first ``--baseline-frames`` processed frames (the untracked
run is slow by design). Both use the same detector size (``--imgsz``) and no whole-frame row.

Prints frames/s end to end (decode included), per-stage milliseconds per frame, verification
calls per frame, and, when ``<clip>.json`` lies beside the video (see shared/data/video):
- per item, the share of its in-view frames (frames of its shots, minus its crops' frames
  +-5) where some detection's top match is the item (``any``), and where it is verified;
- identity: the track on each catalog crop's box, id switches between them (one-pass items),
  and how long that track lives in its shot; tracks matched to the item per shot;
- false confirmations: frames where the item is verified while it is not in view;
- frames from a track's start to its first verification (the time budget delays some).
``--kind`` is the catalog's kind (``vehicles`` for the highway clip: ImageNet features and, until
the catalog is calibrated, the conservative default); ``--calibrate`` first fits the catalog's
own calibration on its images (`matching.calibration`, as the service's refit does) and
scores the clip with it (a catalog too small to calibrate keeps the kind's default, said so).
The last line is ``fps=F verify_per_frame_tracking=A verify_per_frame_no_tracking=B frames=N``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench.machine import describe
from core import cli
from core.kinds import KINDS
from core.settings import get_settings
from detection.detector import Detector
from matching.engine import load_pipeline
from matching.folder_catalog import load_folder_catalog
from matching.pipeline import PipelineConfig
from tracking.tracker import TrackedMatcher, TrackerConfig
from tracking.video import FrameRecord, VideoStats, open_video, run_video

MARGIN = 5  # frames around a catalog crop's own frame left out of the scoring
MIN_IOU = 0.3  # a detection overlapping a catalog crop's box this much is that object


@dataclass(frozen=True)
class ItemTruth:
    """Where one catalog item of a clip is, from ``<clip>.json``.

    Attributes:
        in_view: frames where it is plainly visible (where matching is scored).
        present: frames where it may show at all (confirmations outside are false).
        crops: (frame, box x0,y0,x1,y1) of its catalog crops.
        shots: shot name -> its in-view frames (one shot ``"clip"`` when the clip has none).
    """

    in_view: set[int]
    present: set[int]
    crops: list[tuple[int, tuple[float, float, float, float]]]
    shots: dict[str, set[int]]


def item_truths(truth: dict) -> dict[str, ItemTruth]:
    """The items of a clip's JSON: shot-based (``shots`` + per item ``shots``, the shelf clip)
    or frame-range based (per item ``frames`` [first, last in view] and ``smaller_until``)."""
    shots = {k: set(range(lo, hi + 1)) for k, (lo, hi) in truth.get("shots", {}).items()}
    out = {}
    for item, info in truth.get("items", {}).items():
        crops = [(c["frame"], tuple(c.get("box_xyxy") or c["box"])) for c in info["crops"]]
        if "shots" in info:
            mine = {name: shots[name] for name in info["shots"]}
            seen = set().union(*mine.values())
            out[item] = ItemTruth(seen, seen, crops, mine)
        else:
            lo, hi = info["frames"]
            seen = set(range(lo, hi + 1))
            present = set(range(lo, max(hi, info.get("smaller_until") or hi) + 1))
            out[item] = ItemTruth(seen, present, crops, {"clip": seen})
    return out


def iou(a: np.ndarray, b: tuple[float, float, float, float]) -> np.ndarray:
    """IoU of boxes ``a`` float (N, 4) xyxy with one box ``b``; float (N,)."""
    x0 = np.maximum(a[:, 0], b[0])
    y0 = np.maximum(a[:, 1], b[1])
    x1 = np.minimum(a[:, 2], b[2])
    y1 = np.minimum(a[:, 3], b[3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / np.maximum(area - inter, 1e-9)


def score(records: list[FrameRecord], truth: dict) -> list[str]:
    """Accuracy and identity lines of one run against the clip's JSON.

    Per item: ``any`` / ``verified``: the share of its in-view frames (its crops' frames +-5
    left out) where some detection's top match is the item / is verified as it;
    ``false_confirmed``: frames where it is verified while it is not there; ``tracks``: per
    shot, distinct track ids whose top match was the item (a shelf holds several bottles of
    one item); ``ids_at_crops``: the track of the detection on each catalog crop's box
    (IoU >= 0.3; ``-`` untracked or not processed); ``id_switches``: for an item seen in one
    pass (the highway clip, where both crops are one vehicle), distinct ids at its crops - 1
    (on the shelf clip crops may be different bottles of one item: ``-``); ``kept``: the
    share of the processed frames of the crop's shot where its track is alive (1 = one id
    throughout).
    """
    items = item_truths(truth)
    by_frame = {r.index: r.result for r in records}
    processed = set(by_frame)
    found: dict[str, set[int]] = defaultdict(set)
    verified: dict[str, set[int]] = defaultdict(set)
    tracks: dict[str, set[tuple[int, int]]] = defaultdict(set)  # item -> (frame, track)
    alive: dict[int, set[int]] = defaultdict(set)  # track -> frames it is reported on
    for index, res in by_frame.items():
        for i, matches in enumerate(res.matches):
            tid = int(res.track_ids[i])
            if tid >= 0:
                alive[tid].add(index)
            if not matches:
                continue
            best = matches[0]
            found[best.item_id].add(index)
            if best.verified:
                verified[best.item_id].add(index)
            if tid >= 0:
                tracks[best.item_id].add((index, tid))
    lines = []
    for item, t in items.items():
        own = {f + d for f, _ in t.crops for d in range(-MARGIN, MARGIN + 1)}
        in_view = (t.in_view & processed) - own
        n = max(1, len(in_view))
        per_shot = {
            name: len({tid for f, tid in tracks[item] if f in frames})
            for name, frames in t.shots.items()
        }
        ids, kept = [], []
        for frame, box in t.crops:
            res = by_frame.get(frame)
            tid = -1
            if res is not None and len(res.detections):
                overlap = iou(res.detections.xyxy, box)
                best_row = int(np.argmax(overlap))
                if overlap[best_row] >= MIN_IOU:
                    tid = int(res.track_ids[best_row])
            ids.append(f"{frame}:{tid if tid >= 0 else '-'}")
            shot = next((fr for fr in t.shots.values() if frame in fr), set())
            if tid >= 0 and shot & processed:
                kept.append(len(alive[tid] & shot) / len(shot & processed))
        switches = "-"
        if list(t.shots) == ["clip"]:  # one pass of one object: its crops share one track
            tracked = {i.split(":")[1] for i in ids} - {"-"}
            switches = str(len(tracked) - 1) if tracked else "-"
        lines.append(
            f"  {item:28s} in-view={len(in_view):4d} any={len(found[item] & in_view) / n:6.1%} "
            f"verified={len(verified[item] & in_view) / n:6.1%} "
            f"false_confirmed={len(verified[item] & (processed - t.present)):3d} "
            f"tracks={per_shot} ids_at_crops=[{' '.join(ids)}] id_switches={switches} "
            f"kept={'/'.join(f'{k:.0%}' for k in kept) or '-'}"
        )
    return lines


def verify_delay(records: list[FrameRecord]) -> tuple[int, float, float, int]:
    """Frames from a track's first frame to its first verification.

    Returns:
        (tracks verified, median frames, 90th percentile frames, tracks never verified).
    """
    first: dict[int, int] = {}
    checked: dict[int, int] = {}
    for rec in records:
        res = rec.result
        for i, tid in enumerate(res.track_ids):
            tid = int(tid)
            if tid < 0:
                continue
            first.setdefault(tid, rec.index)
            if res.verified_now[i]:
                checked.setdefault(tid, rec.index)
    delays = [checked[t] - first[t] for t in checked]
    if not delays:
        return 0, float("nan"), float("nan"), len(first)
    return (
        len(delays),
        float(np.median(delays)),
        float(np.percentile(delays, 90)),
        len(first) - len(checked),
    )


def run(
    video_path: Path, catalog, pipeline, config: PipelineConfig, args, tracking: bool, limit: int
) -> tuple[list[FrameRecord], VideoStats, float, TrackedMatcher | None]:
    """One pass over the clip; returns its records, totals, wall-clock seconds, matcher."""
    video = open_video(video_path)
    matcher = None
    if tracking:
        tconfig = replace(
            TrackerConfig.from_settings(get_settings(), args.imgsz),
            reverify_frames=args.reverify,
            verify_budget_ms=args.verify_budget or None,
            shortlist=args.shortlist,
            async_verify=not args.sync_verify,
        )
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
    return records, stats, time.perf_counter() - start, matcher


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


def calibrate(pipeline, catalog, folder: Path) -> None:
    """Fit the folder catalog's own calibration and attach it to ``catalog`` (printed)."""
    from bench.catalog_calibration import folder_digest, folder_images, print_calibration
    from matching.calibration.calibrate import fit_catalog_calibration

    digest = folder_digest(folder, catalog.kind)
    images = folder_images(pipeline, folder, catalog.kind)
    cal, _ = fit_catalog_calibration(pipeline, images, catalog.kind, digest, progress=True)
    print_calibration(cal)
    catalog.own_calibration, catalog.content_digest = cal, digest


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.video", description=__doc__.splitlines()[0], epilog=cli.EXIT_STATUS
    )
    parser.add_argument("video", type=Path, help="a video file OpenCV decodes (MP4)")
    parser.add_argument("--catalog", type=Path, required=True, help="catalog folder (item/img)")
    parser.add_argument("--kind", choices=KINDS, default="products", help="the catalog's kind")
    parser.add_argument(
        "--calibrate", action="store_true", help="fit and use the catalog's own calibration"
    )
    parser.add_argument("--frames", type=int, default=None, help="decode at most N frames")
    parser.add_argument("--stride", type=int, default=1, help="process every S-th frame")
    parser.add_argument(
        "--baseline-frames", type=int, default=30, help="frames of the untracked run"
    )
    parser.add_argument("--imgsz", type=int, default=416, help="detector size (0: its own)")
    parser.add_argument(
        "--reverify",
        type=int,
        default=None,
        help="frames between a track's verifications (default SIGHTING_REVERIFY_FRAMES)",
    )
    parser.add_argument(
        "--verify-budget",
        type=float,
        default=None,
        help="average verification ms per frame (0: no limit; default SIGHTING_VERIFY_BUDGET_MS)",
    )
    parser.add_argument(
        "--shortlist",
        type=int,
        default=None,
        help="candidates a track is verified against (default SIGHTING_STREAM_SHORTLIST)",
    )
    parser.add_argument(
        "--sync-verify",
        action="store_true",
        help="verify inside each frame (before issue 24) instead of in the worker thread",
    )
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.verify_budget is None:
        args.verify_budget = settings.verify_budget_ms
    if args.shortlist is None:
        args.shortlist = settings.stream_shortlist
    if args.reverify is None:
        args.reverify = settings.reverify_frames
    pipeline = load_pipeline(settings)
    catalog = load_folder_catalog(pipeline, args.catalog, kind=args.kind)
    if args.calibrate:
        calibrate(pipeline, catalog, args.catalog)
    if args.imgsz:
        det = pipeline.detector
        pipeline.detector = Detector(
            det.backend, replace(det.config, imgsz=args.imgsz), det.fingerprint
        )
    config = PipelineConfig.from_settings(settings, whole_frame=False)
    truth_path = args.video.with_suffix(".json")
    truth = json.loads(truth_path.read_text()) if truth_path.is_file() else None
    print(describe(settings))
    print(
        f"video={args.video.name} catalog={args.catalog} kind={args.kind} "
        f"calibration={pipeline.calibration_for(catalog)[1]} imgsz={args.imgsz} "
        f"stride={args.stride} "
        f"reverify={args.reverify} verify_budget_ms={args.verify_budget or 'none'} "
        f"track_shortlist={args.shortlist} untracked: shortlist={config.shortlist} "
        f"verify_crops={config.verify_crops} "
        f"verification={'in the frame' if args.sync_verify else 'worker thread (async)'} "
        f"runtimes: detector={pipeline.detector.runtime.runtime}/"
        f"{pipeline.detector.runtime.precision} embedder="
        f"{pipeline.embedder_for(args.kind).runtime.runtime}/"
        f"{pipeline.embedder_for(args.kind).runtime.precision}"
    )

    records, stats, wall, matcher = run(
        args.video, catalog, pipeline, config, args, True, args.frames
    )
    with_tracking = report("tracking", stats, wall)
    done, median, p90, never = verify_delay(records)
    print(
        f"  tracks verified={done} (never: {never}); frames from a track's start to its "
        f"verification: median={median:.0f} p90={p90:.0f}"
    )
    lags = matcher.verdict_lags if matcher is not None else []
    lag50 = float(np.median(lags)) if lags else 0.0
    lag90 = float(np.percentile(lags, 90)) if lags else 0.0
    if not args.sync_verify:
        print(
            f"  verdicts from the worker: {len(lags)}; frames from a track's crop to its "
            f"verdict showing: median={lag50:.0f} p90={lag90:.0f}"
        )
    fps = stats.frames / wall
    print(f"  30 fps streams this process keeps up with: {fps / 30:.2f}")
    if truth:
        print("tracking accuracy (frames processed only):")
        print("\n".join(score(records, truth)))

    limit = args.baseline_frames * args.stride
    if args.frames is not None:
        limit = min(limit, args.frames)
    base_records, base_stats, base_wall, _ = run(
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
        f"verify_per_frame_no_tracking={without:.3f} frames={stats.frames} "
        f"verdict_lag_p50={lag50:.0f} verdict_lag_p90={lag90:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

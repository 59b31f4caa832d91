"""How many live streams one machine sustains, served the way the service serves them.

    python -m bench.streams VIDEO --catalog DIR [--streams 1,2,4,8] [--workers W] [--seconds S]

W worker processes (as gunicorn workers: each loads its own models, on the GPU when there is
one) share N concurrent streams of the clip, round-robin within a worker. Each stream reads
its next frame (decode included; the clip loops; each stream starts at another offset) and
matches it with tracking, exactly as ``POST .../streams/<id>/frames`` does: the settings'
tracker options (`tracking.tracker.TrackerConfig.from_settings`: verification budget, shortlist,
re-verification) and the detector at ``SIGHTING_STREAM_IMGSZ`` (or ``--imgsz``). Streams run
unpaced, as fast as the worker serves them; a stream keeps up when it gets at least
``--target-fps`` frames per second. Stream counts are tried in order until one does not keep
up. Prints one table row per count; the last line is
``streams_sustained=K target_fps=T workers=W``.

Set ``SIGHTING_THREADS`` to the CPU cores per worker (cores / W) on a CPU machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import cli

START_DELAY_S = 1.0  # every worker starts a round at the same wall-clock time


@dataclass(frozen=True)
class Round:
    """One measurement: ``streams`` of this worker, run from ``start`` (epoch s) for ``seconds``."""

    streams: int
    first_stream: int  # global index of this worker's first stream (sets its clip offset)
    total_streams: int
    start: float
    seconds: float


@dataclass(frozen=True)
class StreamResult:
    """What one stream did in a round."""

    frames: int
    verify_calls: int
    latencies_ms: list[float]
    seconds: float  # the round's window as this worker ran it (late when set-up overran)


def _serve(video: Path, catalog_dir: Path, imgsz: int | None, commands, results) -> None:
    """A worker process: load the models once, then run the rounds it is sent (None ends)."""
    import cv2

    from core.settings import get_settings
    from matching.engine import load_pipeline
    from matching.folder_catalog import load_folder_catalog
    from matching.pipeline import PipelineConfig
    from tracking.tracker import TrackedMatcher, TrackerConfig

    settings = get_settings()
    pipeline = load_pipeline(settings)
    catalog = load_folder_catalog(pipeline, catalog_dir, progress=False)
    tconfig = TrackerConfig.from_settings(
        settings, settings.stream_imgsz if imgsz is None else imgsz
    )
    config = PipelineConfig(shortlist=settings.shortlist, whole_frame=False)
    results.put("ready")
    while (job := commands.get()) is not None:
        captures, matchers = [], []
        for i in range(job.streams):
            cap = cv2.VideoCapture(str(video))
            length = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            offset = length * (job.first_stream + i) // max(1, job.total_streams)
            cap.set(cv2.CAP_PROP_POS_FRAMES, offset)
            captures.append(cap)
            matchers.append(TrackedMatcher(pipeline, tconfig))
        latencies: list[list[float]] = [[] for _ in range(job.streams)]
        time.sleep(max(0.0, job.start - time.time()))
        began, end = time.time(), job.start + job.seconds
        while time.time() < end:
            for i, (cap, matcher) in enumerate(zip(captures, matchers, strict=True)):
                t0 = time.perf_counter()
                ok, bgr = cap.read()
                if not ok:  # the clip ended: loop
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, bgr = cap.read()
                matcher.process(np.ascontiguousarray(bgr[..., ::-1]), catalog, config)
                latencies[i].append((time.perf_counter() - t0) * 1000.0)
        window = max(1e-9, time.time() - began)
        for cap in captures:
            cap.release()
        results.put(
            [
                StreamResult(m.frames, m.verify_calls, lat, window)
                for m, lat in zip(matchers, latencies, strict=True)
            ]
        )


def _get(results, workers: list, timeout: float):
    """The next result of any worker; raises when a worker died or ``timeout`` passed."""
    import queue

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            dead = [w.exitcode for w in workers if not w.is_alive()]
            if dead:
                raise RuntimeError(f"a worker died (exit code {dead[0]}); see above") from None
    raise RuntimeError(f"no answer from the workers in {timeout:.0f} s")


def split(streams: int, workers: int) -> list[int]:
    """Streams per worker, as even as possible: ``split(5, 2) == [3, 2]``."""
    return [streams // workers + (w < streams % workers) for w in range(workers)]


def summarize(results: list[StreamResult]) -> dict[str, float]:
    """Aggregate frames/s, the slowest stream's frames/s, latency p50/p95 (ms), verifications
    per frame of one round."""
    frames = sum(r.frames for r in results)
    lat = np.concatenate([r.latencies_ms for r in results if r.latencies_ms] or [np.zeros(1)])
    return {
        "aggregate_fps": sum(r.frames / r.seconds for r in results),
        "slowest_fps": min(r.frames / r.seconds for r in results),
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "verify_per_frame": sum(r.verify_calls for r in results) / max(1, frames),
    }


def ramp(counts: list[int], measure: Callable[[int], dict[str, float]], target_fps: float) -> int:
    """Measure each stream count in turn (``measure(n)``, a `summarize` dict), print its table
    row, stop at the first that does not keep up; returns the largest count that did (0: none).
    """
    print(
        "| streams | aggregate frames/s | slowest stream frames/s | latency p50 / p95 ms "
        "| verifications per frame | keeps up |"
    )
    print("|---|---|---|---|---|---|")
    sustained = 0
    for n in counts:
        m = measure(n)
        ok = m["slowest_fps"] >= target_fps
        print(
            f"| {n} | {m['aggregate_fps']:.1f} | {m['slowest_fps']:.1f} | "
            f"{m['p50_ms']:.0f} / {m['p95_ms']:.0f} | {m['verify_per_frame']:.3f} | "
            f"{'yes' if ok else 'no'} |",
            flush=True,
        )
        if not ok:
            break
        sustained = n
    return sustained


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.streams", description=__doc__.splitlines()[0], epilog=cli.EXIT_STATUS
    )
    parser.add_argument("video", type=Path, help="a video file OpenCV decodes (MP4)")
    parser.add_argument("--catalog", type=Path, required=True, help="catalog folder (item/img)")
    parser.add_argument(
        "--streams",
        default="1,2,4,8,16,32,64",
        help="stream counts to try, in order, until one does not keep up",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (models each)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each round")
    parser.add_argument("--target-fps", type=float, default=30.0, help="a camera's frame rate")
    parser.add_argument(
        "--imgsz", type=int, default=None, help="detector size (default SIGHTING_STREAM_IMGSZ)"
    )
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.streams.split(",")]
    except ValueError:
        parser.error(f"--streams must be comma-separated integers, got {args.streams!r}")
    if not counts or min(counts) < 1 or args.workers < 1 or args.seconds <= 0:
        parser.error("--streams, --workers and --seconds must be positive")
    if not args.video.is_file() or not args.catalog.is_dir():
        parser.error(f"no video {args.video} or no catalog folder {args.catalog}")
    from core.errors import BadInput
    from tracking.video import open_video

    try:
        open_video(args.video).capture.release()
    except BadInput as exc:
        parser.error(f"{args.video}: {exc}")

    from bench.machine import describe
    from core.runtime import configure_threads
    from core.settings import get_settings

    settings = get_settings()
    configure_threads(settings.threads)  # as each worker does: the printed threads are theirs
    print(describe(settings) + " (per worker)")
    print(
        f"video={args.video.name} catalog={args.catalog} workers={args.workers} "
        f"seconds={args.seconds} target_fps={args.target_fps} "
        f"imgsz={args.imgsz if args.imgsz is not None else settings.stream_imgsz or 'detector'} "
        f"verify_budget_ms={settings.verify_budget_ms} shortlist={settings.stream_shortlist}"
    )
    ctx = mp.get_context("spawn")  # never fork a process that may hold torch threads or CUDA
    commands = [ctx.Queue() for _ in range(args.workers)]
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_serve, args=(args.video, args.catalog, args.imgsz, q, results))
        for q in commands
    ]
    for w in workers:
        w.start()
    sustained = 0
    try:
        for _ in workers:
            _get(results, workers, timeout=600)  # "ready": models loaded

        def measure(n: int) -> dict[str, float]:
            start = time.time() + START_DELAY_S
            first = 0
            for q, share in zip(commands, split(n, args.workers), strict=True):
                q.put(Round(share, first, n, start, args.seconds if share else 0.0))
                first += share
            timeout = args.seconds + 600
            return summarize([r for _ in workers for r in _get(results, workers, timeout)])

        sustained = ramp(counts, measure, args.target_fps)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for q in commands:
            q.put(None)
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.terminate()
    print(f"streams_sustained={sustained} target_fps={args.target_fps:g} workers={args.workers}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

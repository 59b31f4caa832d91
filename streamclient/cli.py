"""The command line of the stream client (``python -m streamclient --help``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from streamclient.client import ClientConfig, StreamClient


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m streamclient",
        description="Stream a video file, RTSP/HTTP URL or camera to a Sighting service and "
        "record the detected catalog items.",
    )
    p.add_argument("source", help="video file, rtsp:// or http(s):// URL, or camera index (0)")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL")
    p.add_argument("--catalog", required=True, help="catalog id")
    p.add_argument("--stream-id", default="", help="stream name on the server (default: random)")
    p.add_argument("--api-key", default=None, help="X-API-Key (default: none)")
    p.add_argument("--top-k", type=int, default=3, help="candidates per detection (3)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality 1-100 (85)")
    p.add_argument("--max-side", type=int, default=None, help="downscale frames to this side")
    p.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep up with the source by dropping frames (default: on for URLs and cameras, "
        "off for files)",
    )
    p.add_argument("--stride", type=int, default=1, help="without realtime: every N-th frame")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames read")
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds (30)")
    p.add_argument("--retries", type=int, default=3, help="consecutive failures allowed (3)")
    p.add_argument("--backoff", type=float, default=0.5, help="first back-off, seconds (0.5)")
    p.add_argument("--out", default=None, help="JSON lines file, one line per detection")
    p.add_argument("--video-out", default=None, help="write the annotated video here (.mp4)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def config_from_args(args: argparse.Namespace) -> ClientConfig:
    return ClientConfig(
        source=args.source,
        url=args.url,
        catalog=args.catalog,
        stream_id=args.stream_id,
        api_key=args.api_key,
        top_k=args.top_k,
        quality=args.quality,
        max_side=args.max_side,
        realtime=args.realtime,
        stride=args.stride,
        max_frames=args.max_frames,
        timeout_s=args.timeout,
        retries=args.retries,
        backoff_s=args.backoff,
        out=args.out,
        video_out=args.video_out,
        progress=not args.quiet,
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be in 1..100")
    for name in ("top_k", "stride", "max_side", "max_frames"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.retries < 0 or args.backoff < 0 or args.timeout <= 0:
        parser.error("--retries and --backoff must be >= 0, --timeout > 0")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 1 stopped early, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    client = StreamClient(config_from_args(args))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    try:
        summary = client.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if summary.exit_code == 2:
        print(f"error: {summary.stopped_by}", file=sys.stderr)
        if not summary.read:
            return 2
    elif summary.exit_code:
        print(f"error: stopped by {summary.stopped_by}", file=sys.stderr)
    print(summary.text())
    return summary.exit_code

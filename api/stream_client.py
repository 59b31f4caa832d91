"""Stream a video file, an RTSP/HTTP stream or a camera to a running Sighting service.

    python -m api.stream_client VIDEO|URL|CAMERA_INDEX --url http://127.0.0.1:8000 \\
        --catalog CID --stream-id cam1 [--out results.jsonl] [--video-out out.mp4]

Each frame is sent as JPEG to ``POST /v1/catalogs/<id>/streams/<stream_id>/frames`` over one
keep-alive session; at the end (or Ctrl-C) ``DELETE /v1/catalogs/<id>/streams/<stream_id>``
ends the stream on the server and a summary is printed. The client keeps up with its source by
dropping frames rather than falling behind:

- live sources (URLs, cameras) with ``--realtime`` (their default): a reader thread keeps only
  the latest frame; frames overwritten before they could be sent are dropped;
- files with ``--realtime``: sending is paced to the file's fps; frames already late when the
  previous answer came back are dropped;
- otherwise (files by default): every ``--stride``-th frame is sent, in order.

Light on purpose: OpenCV, NumPy, requests and tqdm only (no torch, no model code).
Exit codes: 0 done (end of source, ``--max-frames`` or Ctrl-C), 1 stopped by the server or a
lost source/connection, 2 bad source, option or output path.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import signal
import sys
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import quote

import cv2
import numpy as np
import requests
from tqdm import tqdm

DEFAULT_FPS = 25.0  # when a source does not say
MAX_RETRY_AFTER_S = 5.0  # cap on a server's Retry-After
FATAL_STATUSES = {400, 401, 403, 404, 405, 409}  # stop: retrying cannot help
HINTS = {
    401: "give a valid key with --api-key",
    404: "check --catalog (unknown catalog, or another tenant's) and that the service has streams",
    409: "the stream id is in use by another client: choose another --stream-id",
    413: "the frames are too large: try --max-side or a lower --quality",
}


class SourceError(Exception):
    """A source that cannot be opened or read, or an output that cannot be written."""


class FatalServerError(Exception):
    """The server refused the stream (a 4xx that retrying cannot fix)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ClientConfig:
    """What to stream where, and how (one field per command-line option)."""

    source: str  # a video file, an rtsp/http(s) URL or a camera index ("0")
    url: str = "http://127.0.0.1:8000"  # the service's base URL
    catalog: str = ""  # catalog id
    stream_id: str = ""  # the server-side stream (tracks); random when empty
    api_key: str | None = None  # sent as X-API-Key
    top_k: int = 3  # candidates per detection
    quality: int = 85  # JPEG quality 1..100
    max_side: int | None = None  # downscale so that max(H, W) <= max_side before sending
    realtime: bool | None = None  # None: on for URLs and cameras, off for files
    stride: int = 1  # without realtime: send every stride-th frame
    max_frames: int | None = None  # stop after this many frames read
    timeout_s: float = 30.0  # per request
    retries: int = 3  # consecutive failures (server or source) before giving up
    backoff_s: float = 0.5  # first back-off; doubles per consecutive failure
    out: str | None = None  # JSON lines, one per detection
    video_out: str | None = None  # the video with boxes drawn, at the source's fps
    progress: bool = True  # live progress line on stderr


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` uint8 (H, W, 3) BGR, ``time_s`` seconds into the source."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass
class Summary:
    """Counters of one run: ``read == sent + dropped + failed + skipped`` (+1 if interrupted)."""

    stream_id: str = ""
    read: int = 0  # frames decoded from the source
    sent: int = 0  # frames answered 200 by the server
    dropped: int = 0  # read but not sent, to keep up (pacing, newer frame, server busy)
    failed: int = 0  # sent without an answer (connection, 5xx, per-frame 4xx)
    skipped: int = 0  # left out by --stride
    corrupt: int = 0  # unreadable frames skipped
    reconnects: int = 0  # source reopened after a drop
    detections: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    items: Counter = field(default_factory=Counter)  # verified detections per item
    tracks: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    stopped_by: str = "end of source"
    exit_code: int = 0
    deleted: bool = False

    @property
    def matches(self) -> int:
        return sum(self.items.values())

    def latency(self, q: float) -> float:
        """The q-th percentile of the round-trip latency in ms (nan before any answer)."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def text(self) -> str:
        """The human-readable summary printed at the end."""
        fps = self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        items = ", ".join(
            f"{item} x{n} ({len(self.tracks[item])} track{'s' * (len(self.tracks[item]) != 1)})"
            for item, n in self.items.most_common()
        )
        return "\n".join(
            [
                f"stream {self.stream_id}: {self.elapsed_s:.1f} s, stopped by {self.stopped_by}",
                f"frames: {self.read} read, {self.sent} sent, {self.dropped} dropped, "
                f"{self.failed} failed, {self.skipped} skipped, {self.corrupt} corrupt, "
                f"{self.reconnects} reconnects; {fps:.1f} frames/s sent",
                f"latency: p50 {self.latency(50):.0f} ms, p95 {self.latency(95):.0f} ms",
                f"detections: {self.detections}; matched items: {items or 'none'}",
            ]
        )


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the client uses."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


def parse_source(source: str) -> int | str:
    """A camera index for digits, else the path or URL unchanged."""
    return int(source) if source.strip().isdigit() else source


def is_live(source: int | str) -> bool:
    """Cameras and URLs are live; local files are not."""
    return isinstance(source, int) or "://" in source


def open_capture(source: int | str) -> cv2.VideoCapture:
    """Open a source with OpenCV.

    Raises:
        SourceError: missing file, or OpenCV cannot open it.
    """
    if not is_live(source) and not Path(source).is_file():
        raise SourceError(f"cannot open source {source!r}: no such file")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open source {source!r} (not a video, camera or open stream)")
    if is_live(source):
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
    return cap


def valid_image(image: np.ndarray | None) -> bool:
    """True for a non-empty uint8 (H, W, 3) frame."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.size > 0
    )


def encode_jpeg(image: np.ndarray, quality: int, max_side: int | None) -> tuple[bytes, float]:
    """Encode a frame for sending.

    Args:
        image: uint8 (H, W, 3) BGR.
        quality: JPEG quality 1..100.
        max_side: downscale (keeping the aspect) so that max(H, W) <= max_side; None: never.

    Returns:
        The JPEG bytes and the scale applied (sent size / source size, <= 1).
    """
    scale = 1.0
    h, w = image.shape[:2]
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise SourceError("cannot encode a frame as JPEG")
    return buf.tobytes(), scale


class Pacer:
    """Realtime pacing for files: wait for a frame's time, drop frames already late.

    Frame i is due at ``i / fps`` seconds after the first call. An early frame is waited for;
    a frame is dropped when the next one is already due (a newer frame exists), so a slow
    server makes the client skip ahead instead of falling behind.
    """

    def __init__(
        self,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.fps = fps if fps > 0 else DEFAULT_FPS
        self._clock, self._sleep = clock, sleep
        self._start: float | None = None

    def should_send(self, index: int) -> bool:
        """Whether to send frame ``index`` (sleeps until it is due when early)."""
        now = self._clock()
        if self._start is None:
            self._start = now - index / self.fps
        elapsed = now - self._start
        if (index + 1) / self.fps <= elapsed:
            return False
        if index / self.fps > elapsed:
            self._sleep(index / self.fps - elapsed)
        return True


class LatestFrameReader:
    """Reads a live source in a thread and keeps only the newest frame.

    A frame replaced before `get` took it counts as dropped. A failed read reopens the source
    up to ``retries`` times with exponential back-off; after that the source is lost.
    """

    def __init__(
        self,
        open_fn: Callable[[], Capture],
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_frames: int | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ):
        self._open_fn, self._retries, self._backoff_s = open_fn, retries, backoff_s
        self._max_frames, self._on_frame = max_frames, on_frame
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._slot: Frame | None = None
        self._ended = False
        self._thread: threading.Thread | None = None
        self.read = self.dropped = self.corrupt = self.reconnects = 0
        self.lost = False
        self.error: str | None = None

    def start(self, cap: Capture) -> LatestFrameReader:
        """Start reading from an already opened capture."""
        self._thread = threading.Thread(target=self._run, args=(cap,), daemon=True)
        self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken; None once the source has ended and none is left."""
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None or self._ended, timeout)
            frame, self._slot = self._slot, None
            return frame

    @property
    def ended(self) -> bool:
        """True once the source has ended and no frame is waiting."""
        with self._cond:
            return self._ended and self._slot is None

    def stop(self) -> None:
        """Stop reading; a frame never taken counts as dropped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._cond:
            if self._slot is not None:
                self.dropped += 1
                self._slot = None

    def _reconnect(self, cap: Capture) -> Capture | None:
        cap.release()
        for attempt in range(self._retries):
            if self._stop.wait(self._backoff_s * 2**attempt):
                return None
            try:
                cap = self._open_fn()
            except SourceError as e:
                self.error = str(e)
                continue
            self.reconnects += 1
            return cap
        self.lost = True
        return None

    def _run(self, cap: Capture) -> None:
        start = time.monotonic()
        failures = 0
        try:
            while not self._stop.is_set():
                if self._max_frames is not None and self.read >= self._max_frames:
                    break
                ok, image = cap.read()
                if not ok:
                    failures += 1
                    new = self._reconnect(cap) if failures <= self._retries else None
                    if new is None:
                        self.lost = self.lost or failures > self._retries
                        return
                    cap = new
                    continue
                if not valid_image(image):
                    self.corrupt += 1
                    continue
                failures = 0
                frame = Frame(self.read, time.monotonic() - start, image)
                self.read += 1
                if self._on_frame is not None:
                    self._on_frame(frame)
                with self._cond:
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = frame
                    self._cond.notify_all()
        finally:
            cap.release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()


def track_color(key: str) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per track (same hue rule as `detection.draw`)."""
    hue = (zlib.crc32(key.encode("utf-8")) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_rows(image: np.ndarray, rows: Sequence[dict]) -> np.ndarray:
    """Draw detection rows (as written to the JSON lines) on a copy of a frame.

    Confirmed items get a thick box and ``#track item score OK``; other detections a thin box
    and ``#track item? score`` (their best, unconfirmed candidate) or ``#track class``.
    Confirmed ones are drawn last, on top.

    Args:
        image: uint8 (H, W, 3) BGR; never modified.
        rows: dicts with ``box`` [x1, y1, x2, y2] in pixels, ``track_id``, ``item``, ``score``,
            ``verified``, ``class``.

    Returns:
        A new uint8 (H, W, 3) BGR image.
    """
    out = image.copy()
    h, w = out.shape[:2]
    lw = max(1, round((h * h + w * w) ** 0.5 / 600))
    scale = max(0.35, lw / 3.5)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for row in sorted(rows, key=lambda r: bool(r.get("verified"))):
        x1, y1, x2, y2 = (int(round(v)) for v in row["box"])
        track = row.get("track_id")
        sure = bool(row.get("verified"))
        color = track_color(str(track if track is not None else row.get("class", "")))
        width = 2 * lw if sure else lw
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, width)
        label = f"#{track}" if track is not None else ""
        if row.get("item") is not None:
            label += f" {row['item']}{'' if sure else '?'} {row['score']:.2f}" + (
                " OK" if sure else ""
            )
        else:
            label += f" {row.get('class', '')}"
        label = label.strip()
        if not label:
            continue
        (tw, th), base = cv2.getTextSize(label, font, scale, 1)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1 + width  # inside at the top
        left = max(0, min(x1, w - tw - 2))  # kept inside the frame
        cv2.rectangle(out, (left, top), (left + tw + 2, top + th + base + 2), color, -1)
        text = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
        cv2.putText(out, label, (left + 1, top + th + 1), font, scale, text, 1, cv2.LINE_AA)
    return out


class VideoSink:
    """Writes every frame read, with the last known boxes drawn, at the source's fps."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, fps if fps > 0 else DEFAULT_FPS
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self.frames = 0

    def update(self, rows: list[dict]) -> None:
        """Replace the boxes drawn on the following frames."""
        with self._lock:
            self._rows = rows

    def write(self, frame: Frame) -> None:
        """Draw the last known boxes on a frame and append it.

        Raises:
            SourceError: the output cannot be written.
        """
        with self._lock:
            image = frame.image
            if self._writer is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._size = (image.shape[1], image.shape[0])
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                self._writer = cv2.VideoWriter(self.path, fourcc, self.fps, self._size)
                if not self._writer.isOpened():
                    raise SourceError(f"cannot write video {self.path!r}")
            if (image.shape[1], image.shape[0]) != self._size:
                image = cv2.resize(image, self._size)
            self._writer.write(draw_rows(image, self._rows))
            self.frames += 1

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.release()


def detection_rows(answer: dict, frame: Frame, scale: float) -> list[dict]:
    """One JSON-lines row per detection of a server answer.

    Boxes come back in the sent image's pixels and are mapped to the source frame's. The item
    is the best-scored match (verified or not), None when there is none.
    """
    h, w = frame.image.shape[:2]
    rows = []
    for det in answer.get("detections") or []:
        box = [float(v) / scale for v in det.get("box", [0, 0, 0, 0])]
        box = [min(max(v, 0.0), float(lim)) for v, lim in zip(box, (w, h, w, h), strict=True)]
        matches = det.get("matches") or []
        best = max(matches, key=lambda m: m.get("score", 0.0)) if matches else None
        rows.append(
            {
                "frame_index": frame.index,
                "time_s": round(frame.time_s, 3),
                "track_id": det.get("track_id"),
                "box": [round(v, 1) for v in box],
                "class": det.get("class"),
                "confidence": det.get("confidence"),
                "item": best.get("item_id") if best else None,
                "score": best.get("score") if best else None,
                "verified": bool(best.get("verified")) if best else False,
                "verified_now": bool(det.get("verified_now", False)),
            }
        )
    return rows


def _error_message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200].strip() or response.reason or "no message"


def _retry_after(response: requests.Response, default: float) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return min(MAX_RETRY_AFTER_S, default)


class StreamClient:
    """Runs one stream: read, send, record, draw; `run` returns the `Summary`."""

    def __init__(self, config: ClientConfig, stderr: IO[str] | None = None):
        self.config = config
        self.stream_id = config.stream_id or f"stream-{uuid.uuid4().hex[:8]}"
        base = config.url.rstrip("/").removesuffix("/v1")
        self.endpoint = f"{base}/v1/catalogs/{quote(config.catalog, safe='')}/streams/" + quote(
            self.stream_id, safe=""
        )
        self.summary = Summary(stream_id=self.stream_id)
        self._err = stderr or sys.stderr
        self._session = requests.Session()
        self._session.headers["Content-Type"] = "image/jpeg"
        if config.api_key:
            self._session.headers["X-API-Key"] = config.api_key
        self._failures = 0  # consecutive
        self._busy = 0  # frames dropped because the server was busy
        self._busy_backoff = config.backoff_s
        self._jsonl: IO[str] | None = None
        self._video: VideoSink | None = None
        self._bar: tqdm | None = None

    def log(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message, file=self._err)
        else:
            print(message, file=self._err)

    # -- sending -------------------------------------------------------------------------------

    def send(self, frame: Frame, *, resend: bool) -> bool:
        """Send a frame; True when answered (it is then recorded), False when not.

        Args:
            resend: retry this same frame after a connection/server failure (sequential mode);
                otherwise it is counted failed and the caller moves on to a newer frame.

        Raises:
            FatalServerError: a 4xx that stops the stream, or too many consecutive failures.
        """
        cfg = self.config
        data, scale = encode_jpeg(frame.image, cfg.quality, cfg.max_side)
        while True:
            t0 = time.monotonic()
            problem: str
            try:
                response = self._session.post(
                    f"{self.endpoint}/frames",
                    params={"frame_index": frame.index, "top_k": cfg.top_k},
                    data=data,
                    timeout=(min(5.0, cfg.timeout_s), cfg.timeout_s),
                )
            except requests.RequestException as e:
                problem = f"cannot reach {cfg.url}: {type(e).__name__}"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        answer = response.json()
                    except ValueError:
                        answer = None
                    if isinstance(answer, dict):
                        self._answered(frame, answer, scale, (time.monotonic() - t0) * 1000)
                        return True
                    problem = "answer is not JSON"
                elif status in (429, 503):  # busy: back off, drop this frame
                    self.summary.dropped += 1
                    self._busy += 1
                    wait = _retry_after(response, self._busy_backoff)
                    self._busy_backoff = min(MAX_RETRY_AFTER_S, self._busy_backoff * 2)
                    self._set_status(f"server busy ({status}), backing off {wait:.1f} s")
                    time.sleep(wait)
                    return False
                elif status in FATAL_STATUSES:
                    raise FatalServerError(status, _error_message(response))
                elif 400 <= status < 500:  # a frame the server will not take: skip it
                    self.summary.failed += 1
                    message = _error_message(response)
                    self._fail(f"frame {frame.index} refused: {status} {message}", status, False)
                    return False
                else:
                    problem = f"server error {status}: {_error_message(response)}"
            try:
                wait = self._fail(problem)
            except FatalServerError:
                self.summary.failed += 1  # given up
                raise
            time.sleep(wait)
            if not resend:
                self.summary.failed += 1
                return False

    def _fail(self, problem: str, status: int = 0, retry: bool = True) -> float:
        """Count a consecutive failure; the back-off before the next try (when ``retry``).

        Raises:
            FatalServerError: more than ``retries`` consecutive failures.
        """
        self._failures += 1
        hint = HINTS.get(status)
        if self._failures > self.config.retries:
            raise FatalServerError(0, problem + (f" ({hint})" if hint else ""))
        count = f"{self._failures}/{self.config.retries}"
        if not retry:
            self.log(f"{problem}; skipped ({count} consecutive failures)")
            return 0.0
        wait = self.config.backoff_s * 2 ** (self._failures - 1)
        self.log(f"{problem}; retry {count} in {wait:.1f} s")
        return wait

    def _answered(self, frame: Frame, answer: dict, scale: float, latency_ms: float) -> None:
        s = self.summary
        s.sent += 1
        s.latencies_ms.append(latency_ms)
        self._failures, self._busy_backoff = 0, self.config.backoff_s
        rows = detection_rows(answer, frame, scale)
        s.detections += len(rows)
        for row in rows:
            if row["item"] is not None and row["verified"]:
                s.items[row["item"]] += 1
                if row["track_id"] is not None:
                    s.tracks[row["item"]].add(row["track_id"])
        if self._jsonl is not None:
            for row in rows:
                self._jsonl.write(json.dumps(row) + "\n")
            self._jsonl.flush()
        if self._video is not None:
            self._video.update(rows)
        self._set_status()

    def delete(self) -> None:
        """End the stream on the server (errors are reported, never raised)."""
        try:
            response = self._session.delete(self.endpoint, timeout=min(5.0, self.config.timeout_s))
        except requests.RequestException as e:
            self.log(f"could not delete stream {self.stream_id}: {type(e).__name__}")
            return
        self.summary.deleted = response.status_code in (200, 204, 404)
        if response.status_code not in (200, 204, 404):
            self.log(f"delete stream {self.stream_id}: {response.status_code}")

    # -- progress ------------------------------------------------------------------------------

    def _set_status(self, note: str = "") -> None:
        if self._bar is None:
            return
        s = self.summary
        elapsed = time.monotonic() - self._t0
        lat = s.latencies_ms[-1] if s.latencies_ms else float("nan")
        self._bar.n = s.read
        self._bar.set_postfix_str(
            f"{s.sent / max(elapsed, 1e-9):.1f} fps sent, {lat:.0f} ms, {s.dropped} dropped, "
            f"{s.failed} failed, {s.matches} matches" + (f", {note}" if note else "")
        )

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> Summary:
        """Stream the source until it ends, the server stops it, or Ctrl-C."""
        cfg, s = self.config, self.summary
        source = parse_source(cfg.source)
        live = is_live(source)
        realtime = live if cfg.realtime is None else cfg.realtime
        try:
            cap = open_capture(source)
            fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
            if not 0 < fps < 1000:
                fps = DEFAULT_FPS
            total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
            if cfg.out:
                Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
                self._jsonl = open(cfg.out, "w", encoding="utf-8")  # noqa: SIM115
            if cfg.video_out:
                self._video = VideoSink(cfg.video_out, fps)
        except (SourceError, OSError) as e:
            if "cap" in locals():
                cap.release()
            s.stopped_by, s.exit_code = str(e), 2
            return s
        if cfg.max_frames:
            total = min(total, cfg.max_frames) if total > 0 else cfg.max_frames
        mode = "latest frame" if realtime and live else "paced" if realtime else "every frame"
        self.log(f"streaming {cfg.source} ({fps:.1f} fps, {mode}) to {self.endpoint}")
        self._t0 = time.monotonic()
        if cfg.progress:
            self._bar = tqdm(total=total or None, unit="frame", file=self._err, leave=False)
        delete = True
        try:
            if realtime and live:
                self._run_live(cap, source)
            else:
                self._run_file(cap, fps, realtime)
        except KeyboardInterrupt:
            s.stopped_by = "Ctrl-C"
        except FatalServerError as e:
            s.exit_code = 1
            if e.status:
                hint = f" ({HINTS[e.status]})" if e.status in HINTS else ""
                s.stopped_by = f"the server: {e.status} {e.message}{hint}"
                delete = e.status not in (404, 409)  # unknown catalog / another client's stream
            else:
                s.stopped_by = e.message
        except SourceError as e:
            s.stopped_by, s.exit_code = str(e), 2
        finally:
            s.elapsed_s = time.monotonic() - self._t0
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if delete:
                self.delete()
            if self._jsonl is not None:
                self._jsonl.close()
            if self._video is not None:
                self._video.close()
            self._session.close()
        return s

    def _run_file(self, cap: cv2.VideoCapture, fps: float, realtime: bool) -> None:
        cfg, s = self.config, self.summary
        pacer = Pacer(fps) if realtime else None
        misses = 0
        index = 0  # position in the source, counting corrupt frames
        try:
            while cfg.max_frames is None or s.read < cfg.max_frames:
                ok, image = cap.read()
                if not ok or not valid_image(image):
                    misses += 1
                    if misses > cfg.retries:  # end of file (or nothing readable left)
                        break
                    index += 1
                    continue
                s.corrupt += misses
                misses = 0
                frame = Frame(index, index / fps, image)
                index += 1
                s.read += 1
                if pacer is not None:
                    send = pacer.should_send(frame.index)
                    if not send:
                        s.dropped += 1
                else:
                    send = frame.index % max(1, cfg.stride) == 0
                    if not send:
                        s.skipped += 1
                if send:
                    self.send(frame, resend=not realtime)
                if self._video is not None:
                    self._video.write(frame)
                self._set_status()
        finally:
            cap.release()
        if s.read == 0:
            raise SourceError(f"no readable frame in {cfg.source!r}")

    def _run_live(self, cap: cv2.VideoCapture, source: int | str) -> None:
        cfg, s = self.config, self.summary
        reader = LatestFrameReader(
            lambda: open_capture(source),
            retries=cfg.retries,
            backoff_s=cfg.backoff_s,
            max_frames=cfg.max_frames,
            on_frame=self._video.write if self._video is not None else None,
        ).start(cap)
        try:
            while True:
                frame = reader.get(timeout=0.5)
                s.read, s.dropped = reader.read, reader.dropped + self._busy
                if frame is None:
                    if reader.ended:
                        break
                    continue
                self.send(frame, resend=False)
                self._set_status()
        finally:
            reader.stop()
            s.read, s.dropped = reader.read, reader.dropped + self._busy
            s.corrupt, s.reconnects = reader.corrupt, reader.reconnects
        if reader.lost:
            s.exit_code = 1
            s.stopped_by = f"lost source after {cfg.retries} reconnect attempts" + (
                f" ({reader.error})" if reader.error else ""
            )


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m api.stream_client",
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


if __name__ == "__main__":
    sys.exit(main())

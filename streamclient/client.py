"""`StreamClient`: one stream's loop: read, send, record, draw."""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2
from tqdm import tqdm

from matching.report import client_rows
from streamclient.drawing import VideoSink
from streamclient.pacing import Pacer
from streamclient.session import HINTS, FatalServerError, StreamSession
from streamclient.sources import (
    DEFAULT_FPS,
    Frame,
    LatestFrameReader,
    SourceError,
    encode_jpeg,
    is_live,
    open_capture,
    parse_source,
    valid_image,
)
from streamclient.summary import Summary


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


class StreamClient:
    """Runs one stream: read, send, record, draw; `run` returns the `Summary`."""

    def __init__(self, config: ClientConfig, stderr: IO[str] | None = None):
        self.config = config
        self.stream_id = config.stream_id or f"stream-{uuid.uuid4().hex[:8]}"
        self.summary = Summary(stream_id=self.stream_id)
        self._err = stderr or sys.stderr
        self._http = StreamSession(
            config.url,
            config.catalog,
            self.stream_id,
            config.api_key,
            timeout_s=config.timeout_s,
            retries=config.retries,
            backoff_s=config.backoff_s,
            log=self.log,
        )
        self.endpoint = self._http.endpoint
        self._busy = 0  # frames dropped because the server was busy
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
            reply = self._http.post_frame(frame.index, data, cfg.top_k)
            if reply.answer is not None:
                self._answered(frame, reply.answer, scale, reply.latency_ms)
                return True
            if reply.busy_wait_s is not None:  # busy: back off, drop this frame
                self.summary.dropped += 1
                self._busy += 1
                wait = reply.busy_wait_s
                self._set_status(f"server busy ({reply.status}), backing off {wait:.1f} s")
                time.sleep(wait)
                return False
            if reply.refused is not None:  # a frame the server will not take: skip it
                self.summary.failed += 1
                problem = f"frame {frame.index} refused: {reply.refused}"
                self._http.failure(problem, reply.status, retry=False)
                return False
            try:
                wait = self._http.failure(reply.problem or "no answer")
            except FatalServerError:
                self.summary.failed += 1  # given up
                raise
            time.sleep(wait)
            if not resend:
                self.summary.failed += 1
                return False

    def _answered(self, frame: Frame, answer: dict, scale: float, latency_ms: float) -> None:
        s = self.summary
        s.sent += 1
        s.latencies_ms.append(latency_ms)
        h, w = frame.image.shape[:2]
        rows = client_rows(answer, frame.index, frame.time_s, scale, (w, h))
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
        status = self._http.delete()
        if status is None:
            return
        self.summary.deleted = status in (200, 204, 404)
        if status not in (200, 204, 404):
            self.log(f"delete stream {self.stream_id}: {status}")

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
            self._http.close()
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

"""Sources of frames: video files, RTSP/HTTP URLs and cameras (OpenCV), JPEG encoding of a
frame for sending, and a reader thread that keeps only a live source's latest frame."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from core.images import resize_long_side

DEFAULT_FPS = 25.0  # when a source does not say


class SourceError(Exception):
    """A source that cannot be opened or read, or an output that cannot be written."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` uint8 (H, W, 3) BGR, ``time_s`` seconds into the source."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass
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
        image, _ = resize_long_side(image, max_side)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise SourceError("cannot encode a frame as JPEG")
    return buf.tobytes(), scale


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

"""Boxes and labels of the detection rows drawn on frames, and the annotated output video."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from detection.draw import label_color
from streamclient.sources import DEFAULT_FPS, Frame, SourceError


def track_color(key: str) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per track: `detection.draw.label_color`'s, as BGR."""
    r, g, b = label_color(key)
    return b, g, r


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

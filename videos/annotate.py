"""Draw a video's answer lines on its frames and encode the result.

The lines are the ``/videos`` answer's (`matching.report.video_lines`): one per detection per
processed frame, ``{"frame", "box", "item", "score", "verified", "track", "class"}``. Every
frame of the input is written: a frame that was not processed (``stride`` > 1) shows the boxes
of the last processed one, so the output has the input's frame count and length.

Encoding: WebM with VP8 (OpenCV's own FFmpeg; no other package). Browsers play it in a
``<video>`` element; the MP4 codec OpenCV writes here (MPEG-4 part 2, ``mp4v``) they do not,
and H.264 (``avc1``) is not in OpenCV's wheels.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import BadInput
from detection.draw import draw_detections

FOURCC = "VP80"
SUFFIX = ".webm"
VERIFIED = (22, 163, 74)  # green (RGB): a verified item
UNVERIFIED = (234, 179, 8)  # amber: an item not (yet) verified
NO_ITEM = (148, 163, 184)  # grey: a detection without a match


@dataclass(frozen=True)
class Annotated:
    """What was written: frames, size (W, H), frames per second, boxes drawn in all."""

    frames: int
    size: tuple[int, int]
    fps: float
    boxes: int


def caption(line: dict) -> str:
    """``item 0.87 verified`` (or the class and track of a detection without a match)."""
    track = f"#{line['track']} " if line.get("track") is not None else ""
    if not line.get("item"):
        return f"{track}{line.get('class') or 'object'}"
    mark = " verified" if line.get("verified") else ""
    return f"{track}{line['item']} {float(line.get('score') or 0):.2f}{mark}"


def _color(line: dict) -> tuple[int, int, int]:
    if not line.get("item"):
        return NO_ITEM
    return VERIFIED if line.get("verified") else UNVERIFIED


def by_frame(lines: Iterable[dict]) -> dict[int, list[dict]]:
    """The lines of each processed frame (a frame without detections has none)."""
    out: dict[int, list[dict]] = {}
    for line in lines:
        if "frame" in line and "box" in line:
            out.setdefault(int(line["frame"]), []).append(line)
    return out


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_caption(
    box: tuple[int, int, int, int], tw: int, th: int, size: tuple[int, int], placed: list
) -> tuple[int, int]:
    """Where a ``tw`` x ``th`` caption of ``box`` goes (as the console's ``placeCaption``):
    above the box, else inside its top, else below it; then a line down (or up) at a time until
    it covers no caption already ``placed`` (rectangles x0, y0, x1, y1)."""
    w, h = size
    x0, y0, _, y1 = box
    tx = min(max(0, x0), max(0, w - tw))

    def free(y: int) -> bool:
        r = (tx, y, tx + tw, y + th)
        return y >= 0 and y + th <= h and not any(_overlaps(r, p) for p in placed)

    starts = (y0 - th, y0, y1)
    for y in starts:
        if free(y):
            return tx, y
    base = max(0, min(h - th, starts[0]))
    for step in range(1, 60):
        for y in (base + step * th, base - step * th):
            if free(y):
                return tx, y
    return tx, base


def draw_frame(frame: np.ndarray, lines: list[dict]) -> np.ndarray:
    """uint8 (H, W, 3) RGB with ``lines``' boxes, then their captions placed so that none
    covers another (a new image)."""
    if not lines:
        return frame
    boxes = np.array([line["box"] for line in lines], dtype=np.float64)
    colors = [_color(x) for x in lines]
    out = draw_detections(frame, boxes, [""] * len(lines), colors)
    h, w = out.shape[:2]
    scale = max(0.35, w / 1600)
    pad = max(1, round(scale * 4))
    placed: list[tuple[int, int, int, int]] = []
    for line, box, color in zip(lines, boxes, colors, strict=True):
        text = caption(line)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        tw, th = tw + 2 * pad, th + base + 2 * pad
        rect = tuple(int(round(v)) for v in box)
        tx, ty = place_caption(rect, tw, th, (w, h), placed)  # type: ignore[arg-type]
        placed.append((tx, ty, tx + tw, ty + th))
        cv2.rectangle(out, (tx, ty), (tx + tw - 1, ty + th - 1), color, -1)
        ink = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
        cv2.putText(
            out,
            text,
            (tx + pad, ty + th - pad - base),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            ink,
            1,
            cv2.LINE_AA,
        )
    return out


def _frames(path: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield np.ascontiguousarray(bgr[..., ::-1])
    finally:
        capture.release()


def annotate_video(
    video: Path, lines: Iterable[dict], out: Path, fps: float, stride: int = 1, progress=None
) -> Annotated:
    """Write ``video``'s frames with ``lines`` drawn to ``out`` (WebM, VP8).

    Args:
        stride: every ``stride``-th frame was processed; the others show its boxes.
        progress: called with the number of frames written so far (every 25 frames).

    Raises:
        BadInput: the video has no frame OpenCV can decode, or the encoder cannot open.
    """
    drawn = by_frame(lines)
    writer = None
    current: list[dict] = []
    frames = boxes = 0
    size = (0, 0)
    try:
        for index, frame in enumerate(_frames(video)):
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
                if not writer.isOpened():
                    raise BadInput(f"OpenCV cannot encode {FOURCC} video here")
            if index % max(1, stride) == 0:  # a processed frame; the others keep its boxes
                current = drawn.get(index, [])
            if (frame.shape[1], frame.shape[0]) != size:
                frame = cv2.resize(frame, size)
            writer.write(np.ascontiguousarray(draw_frame(frame, current)[..., ::-1]))
            frames += 1
            boxes += len(current)
            if progress is not None and frames % 25 == 0:
                progress(frames)
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise BadInput("the video has no frame that decodes")
    return Annotated(frames, size, fps, boxes)


def temp_video(data: bytes) -> Path:
    """``data`` in a temp file (the caller deletes it)."""
    with tempfile.NamedTemporaryFile(suffix=".video", delete=False) as f:
        f.write(data)
    return Path(f.name)

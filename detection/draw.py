"""Draw boxes and labels on a copy of an image (OpenCV; no global plotting state)."""

from __future__ import annotations

import colorsys
import zlib
from collections.abc import Sequence

import cv2
import numpy as np

from core.errors import BadInput

Color = tuple[int, int, int]


def label_color(label: str) -> Color:
    """A stable, saturated RGB colour for a label (same label, same colour, every run)."""
    hue = (zlib.crc32(label.encode("utf-8")) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[str],
    colors: Sequence[Color] | None = None,
    *,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw boxes with a filled label tag above each.

    Args:
        image: uint8 (H, W, 3) RGB; never modified.
        boxes: (N, 4) xyxy in pixels (e.g. ``Detections.xyxy``).
        labels: N strings (e.g. ``"person 0.82"``).
        colors: N RGB colours; by default one per distinct label (`label_color`).
        thickness: line width in pixels; by default about 1/400 of the image diagonal.

    Returns:
        A new uint8 (H, W, 3) RGB image.

    Raises:
        BadInput: wrong image dtype/shape or box/label/colour counts that differ.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise BadInput("draw_detections: expected image uint8 (H, W, 3)")
    if image.shape[2] != 3:
        raise BadInput(f"draw_detections: expected image (H, W, 3), got {image.shape}")
    boxes = (
        np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.empty((0, 4))
    )
    if len(labels) != len(boxes):
        raise BadInput(f"draw_detections: {len(boxes)} boxes but {len(labels)} labels")
    if colors is not None and len(colors) != len(boxes):
        raise BadInput(f"draw_detections: {len(boxes)} boxes but {len(colors)} colors")
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    lw = thickness or max(1, round((h * h + w * w) ** 0.5 / 400))
    font_scale = max(0.35, lw / 3)
    for i, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        color = tuple(int(c) for c in (colors[i] if colors is not None else label_color(label)))
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, lw, cv2.LINE_8)
        if not label:
            continue
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1  # inside the box at the top
        cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + base + 2), color, -1)
        text = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
        cv2.putText(
            out,
            label,
            (x1 + 1, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            text,
            1,
            cv2.LINE_AA,
        )
    return out

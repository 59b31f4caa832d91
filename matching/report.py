"""Results as plain data (for JSON at the edges: the command line and the API) and as pictures."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from detection.draw import draw_detections
from matching.pipeline import FrameResult, Match

TIMING_STAGES = ("decode", "detect", "embed", "search", "verify")


def match_to_dict(match: Match) -> dict:
    """One match as the API's JSON object."""
    return {
        "item_id": match.item_id,
        "image_id": match.image_id,
        "similarity": round(match.similarity, 4),
        "inliers": match.inliers,
        "verified": match.verified,
        "score": round(match.score, 4),
    }


def frame_to_dict(result: FrameResult) -> dict:
    """A frame's detections and their matches as the detect endpoint's JSON."""
    det = result.detections
    names = det.data.get("class_name", [""] * len(det))
    detections = [
        {
            "box": [round(float(v), 1) for v in det.xyxy[i]],
            "class": str(names[i]),
            "confidence": round(float(det.confidence[i]), 4),
            "matches": [match_to_dict(m) for m in result.matches[i]],
        }
        for i in range(len(det))
    ]
    return {
        "detections": detections,
        "timings": {k: round(v * 1000.0, 1) for k, v in result.timings.items()},
    }


def _label(class_name: str, matches: list[Match]) -> str:
    if not matches:
        return class_name
    best = matches[0]
    mark = "OK " if best.verified else ""
    return f"{mark}{best.item_id} {best.score:.2f}"


def draw_frame(
    image: np.ndarray,
    result: FrameResult,
    reference: Callable[[str], np.ndarray | None] | None = None,
    *,
    thumb: int = 128,
) -> np.ndarray:
    """Boxes and best matches drawn on a copy of the frame, with a gallery strip below.

    Args:
        image: uint8 (H, W, 3) RGB, the frame the result belongs to.
        result: its matches.
        reference: optional ``image_id -> uint8 RGB`` for catalog thumbnails in the gallery.
        thumb: gallery thumbnail height in pixels.

    Returns:
        uint8 (H', W, 3) RGB: the annotated frame, plus one gallery row when ``reference``
        is given and any detection has a match.
    """
    det = result.detections
    names = det.data.get("class_name", [""] * len(det))
    labels = [_label(str(names[i]), result.matches[i]) for i in range(len(det))]
    verified = [bool(m and m[0].verified) for m in result.matches]
    colors = [(40, 200, 40) if v else (230, 160, 20) for v in verified]
    drawn = draw_detections(image, det.xyxy, labels, colors)
    if reference is None:
        return drawn
    tiles = []
    seen: set[str] = set()
    for i in np.argsort([-(m[0].score if m else 0.0) for m in result.matches]):
        if not result.matches[i] or result.matches[i][0].image_id in seen:
            continue
        best = result.matches[i][0]
        seen.add(best.image_id)
        ref = reference(best.image_id)
        if ref is None:
            continue
        scale = thumb / ref.shape[0]
        tile = cv2.resize(ref, (max(1, int(ref.shape[1] * scale)), thumb))
        tile = cv2.copyMakeBorder(tile, 22, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        text = f"{best.item_id[:24]} {best.score:.2f}"
        cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colors[i], 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        return drawn
    strip = np.full((tiles[0].shape[0], drawn.shape[1], 3), 255, dtype=np.uint8)
    x = 0
    for tile in tiles:
        w = min(tile.shape[1], strip.shape[1] - x)
        if w <= 0:
            break
        strip[:, x : x + w] = tile[:, :w]
        x += w
    return np.vstack([drawn, strip])

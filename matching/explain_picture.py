"""The explanation picture (`matching.explain`): correspondences, Grad-CAM maps, a caption::

    +-----------------------+----------------------------------+
    | query crop            | catalog image   (inlier lines)   |
    +-----------------------+----------------------------------+
    | Grad-CAM of the crop  | Grad-CAM of the catalog image    |
    +-----------------------+----------------------------------+
    | item, score, similarity, inliers, verified                |
    +-----------------------------------------------------------+

Drawing only: every input is left untouched and the picture is a new array.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from embedding.gradcam import overlay_heatmap
from matching.draw_matches import draw_matches, put_label
from matching.verifier import MatchResult


def caption_lines(numbers: dict, top_k: int) -> list[str]:
    """The caption's lines from an explanation's numbers (`matching.explain.Explanation`).

    Args:
        numbers: ``{"item_id", "image_id", "box", "class", "rank", "score", "verified",
            "similarity", "inliers", "pair": {"similarity", "inliers", "matches"}}``.
        top_k: how many candidates were ranked (named when the item is not among them).
    """
    pair = numbers["pair"]
    if numbers["score"] is None:
        head = f"{numbers['item_id']}: not among the crop's top {top_k} candidates"
    else:
        verdict = "VERIFIED" if numbers["verified"] else "not verified"
        head = (
            f"{numbers['item_id']}: score {numbers['score']:.2f}, {verdict}, rank "
            f"{numbers['rank']}, similarity {numbers['similarity']:.3f}, "
            f"inliers {numbers['inliers']}"
        )
    box = ",".join(f"{v:.0f}" for v in numbers["box"])
    pair_line = (
        f"drawn: crop '{numbers['class']}' [{box}] vs {numbers['image_id']}: similarity "
        f"{pair['similarity']:.3f}, {pair['inliers']}/{pair['matches']} inliers"
    )
    return [head, pair_line]


def _to_height(image: np.ndarray, height: int) -> np.ndarray:
    """``uint8 (h, w, 3) -> (height, round(w * height / h), 3)``."""
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def _caption_band(lines: list[str], width: int, scale: float = 0.5) -> np.ndarray:
    """uint8 (24 * L + 8, width, 3) white band with the lines in black, each wrapped at spaces
    into the L lines that fit ``width``."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    wrapped: list[str] = []
    for line in lines:
        current = ""
        for word in line.split(" "):
            trial = f"{current} {word}" if current else word
            if current and cv2.getTextSize(trial, font, scale, 1)[0][0] > width - 16:
                wrapped.append(current)
                current = word
            else:
                current = trial
        wrapped.append(current)
    band = np.full((24 * len(wrapped) + 8, width, 3), 255, np.uint8)
    for i, line in enumerate(wrapped):
        cv2.putText(band, line, (8, 22 + 24 * i), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def compose(
    crop: np.ndarray,
    reference: np.ndarray,
    pair: MatchResult,
    crop_heat: np.ndarray,
    reference_heat: np.ndarray,
    caption: list[str],
    height: int = 320,
    max_width: int = 1600,
) -> np.ndarray:
    """The explanation picture: correspondences, Grad-CAM maps, caption.

    Args:
        crop: uint8 (h, w, 3) RGB, the query crop.
        reference: uint8 (Hr, Wr, 3) RGB, the catalog image.
        pair: verification of (crop, reference), points in those images' pixels.
        crop_heat: float (h, w) in [0, 1]; reference_heat: float (Hr, Wr) in [0, 1].
        caption: text lines written below (wrapped to the picture's width).
        height: row height in pixels, lowered (to 64 at least) so the width stays within
            ``max_width``.

    Returns:
        uint8 (2 * height' + 4 + 24 * L + 8, W, 3) RGB: W = the two images' widths at
        height ``height'``, L >= len(caption) the caption's lines once wrapped.
    """
    ratio = crop.shape[1] / crop.shape[0] + reference.shape[1] / reference.shape[0]
    height = max(64, min(height, math.floor(max_width / ratio)))
    q, r = _to_height(crop, height), _to_height(reference, height)
    shown = pair.resized(crop.shape[:2], q.shape[:2], reference.shape[:2], r.shape[:2])
    top = draw_matches(q, r, shown)
    bottom = np.hstack([overlay_heatmap(q, crop_heat), overlay_heatmap(r, reference_heat)])
    put_label(top, "query crop", (8, height - 10))
    put_label(top, "catalog image", (q.shape[1] + 8, height - 10))
    put_label(bottom, "Grad-CAM of the crop", (8, height - 10))
    put_label(bottom, "Grad-CAM of the catalog image", (q.shape[1] + 8, height - 10))
    gap = np.full((4, top.shape[1], 3), 255, np.uint8)
    return np.vstack([top, gap, bottom, _caption_band(caption, top.shape[1])])

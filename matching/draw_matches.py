"""Side-by-side picture of a verified pair: inlier lines in green, other matches in faint red."""

from __future__ import annotations

import cv2
import numpy as np

from matching.verifier import MatchResult

INLIER_COLOR = (40, 220, 60)  # RGB
OUTLIER_COLOR = (230, 60, 50)


def draw_matches(
    query_img: np.ndarray,
    ref_img: np.ndarray,
    result: MatchResult,
    *,
    max_lines: int = 300,
    show_outliers: bool = False,
) -> np.ndarray:
    """Draw query and reference side by side with lines between matched points.

    The inputs are not modified (drawing happens on a new canvas). When the heights differ,
    the shorter image is scaled to the taller one's height.

    Args:
        query_img: uint8 (Hq, Wq, 3) RGB, the image the query features came from.
        ref_img: uint8 (Hr, Wr, 3) RGB, the reference image.
        result: the `MatchResult` of the pair (points in the two images' pixels).
        max_lines: most lines drawn (inliers first), to keep the picture readable.
        show_outliers: also draw the matches RANSAC rejected.

    Returns:
        uint8 (H, Wq' + Wr', 3) RGB, with the inlier count written in the top-left corner.
    """
    height = max(query_img.shape[0], ref_img.shape[0])
    sq = height / query_img.shape[0]
    sr = height / ref_img.shape[0]
    left = _scaled(query_img, sq)
    right = _scaled(ref_img, sr)
    canvas = np.zeros((height, left.shape[1] + right.shape[1], 3), np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    offset = np.array([left.shape[1], 0], np.float32)
    q = (result.query_points + 0.5) * sq - 0.5
    r = (result.ref_points + 0.5) * sr - 0.5 + offset
    order = np.argsort(~result.inlier_mask, kind="stable")[:max_lines]
    thickness = max(1, round(height / 400))
    for i in order:
        inlier = bool(result.inlier_mask[i])
        if not inlier and not show_outliers:
            continue
        color = INLIER_COLOR if inlier else OUTLIER_COLOR
        p0 = tuple(int(round(v)) for v in q[i])
        p1 = tuple(int(round(v)) for v in r[i])
        cv2.line(canvas, p0, p1, color, thickness, cv2.LINE_AA)
        cv2.circle(canvas, p0, thickness + 1, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, p1, thickness + 1, color, -1, cv2.LINE_AA)
    label = f"{result.inliers}/{result.matches} inliers, spread {result.spread:.2f}"
    put_label(canvas, label, (8, 24), 0.6)
    return canvas


def put_label(image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5) -> None:
    """White text on a dark box whose bottom-left corner is ``org``, drawn in place.

    (A box rather than an outline: OpenCV 5 widens glyphs with the stroke thickness, so an
    outline drawn thicker than the text does not line up with it.)
    """
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    x, y = org
    cv2.rectangle(image, (x - 3, y - th - 4), (x + tw + 3, y + base), (20, 20, 20), -1)
    cv2.putText(image, text, (x, y - 1), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _scaled(image: np.ndarray, factor: float) -> np.ndarray:
    if abs(factor - 1.0) < 1e-6:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))))

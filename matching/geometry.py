"""Geometry helpers of keypoint verification: resizing, coordinate scaling, RANSAC, coverage.

Pixel convention: pixel centres sit at integer coordinates (kornia's frame), so a point ``p``
of an image resized by ``scale = original / resized`` maps back to ``(p + 0.5) * scale - 0.5``.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.images import resize_long_side as resize_long_side  # the one; kept here for callers


def to_original(points: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Map points of a resized image back to the original image.

    Args:
        points: float (N, 2) x, y in the resized image.
        scale: (sx, sy) = original / resized, as `resize_long_side` returns.

    Returns:
        float32 (N, 2) x, y in the original image.
    """
    s = np.asarray(scale, np.float32)
    return ((np.asarray(points, np.float32) + 0.5) * s - 0.5).astype(np.float32)


def find_homography(
    src: np.ndarray,
    dst: np.ndarray,
    *,
    method: int,
    threshold: float,
    confidence: float,
    max_iters: int,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Robustly fit ``dst ~ H @ src`` with OpenCV (USAC/MAGSAC by default in the verifier).

    Args:
        src: float (M, 2) points of the query image.
        dst: float (M, 2) matching points of the reference image.
        method: an OpenCV robust method flag, e.g. ``cv2.USAC_MAGSAC``.
        threshold: largest reprojection error of an inlier, pixels of ``dst``.
        confidence: RANSAC confidence in (0, 1).
        max_iters: iteration cap.

    Returns:
        H float64 (3, 3) or None (fewer than 4 points, or no model found), and the inlier
        mask bool (M,) (all False when no model).
    """
    m = len(src)
    if m < 4:
        return None, np.zeros(m, bool)
    h, mask = cv2.findHomography(
        np.ascontiguousarray(src, np.float64),
        np.ascontiguousarray(dst, np.float64),
        method,
        threshold,
        maxIters=max_iters,
        confidence=confidence,
    )
    if h is None or mask is None or not np.isfinite(h).all():
        return None, np.zeros(m, bool)
    return h.astype(np.float64), mask.reshape(-1).astype(bool)


def is_plausible_homography(h: np.ndarray, max_scale: float = 20.0) -> bool:
    """Whether H can be a view of the same surface: finite, no mirroring, no extreme zoom.

    Args:
        h: float64 (3, 3).
        max_scale: the largest area scale (or its inverse) accepted between the two images.
    """
    if not np.isfinite(h).all() or abs(h[2, 2]) < 1e-12:
        return False
    a = h[:2, :2] / h[2, 2]
    det = float(np.linalg.det(a))
    return 1.0 / max_scale**2 < det < max_scale**2


def hull_coverage(points: np.ndarray, image_size: tuple[int, int]) -> float:
    """Share of an image covered by the convex hull of points.

    Args:
        points: float (N, 2) x, y in pixels of the image.
        image_size: (H, W).

    Returns:
        Hull area / image area, in [0, 1]; 0 for fewer than 3 points.
    """
    if len(points) < 3:
        return 0.0
    h, w = image_size
    pts = np.clip(np.asarray(points, np.float32), 0, [w, h]).astype(np.float32)
    area = cv2.contourArea(cv2.convexHull(pts))
    return float(min(1.0, max(0.0, area / float(h * w))))

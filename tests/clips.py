"""Short video clips cut from a real one, for tests that need a few frames of real video."""

from __future__ import annotations

from pathlib import Path


def cut_clip(
    source: Path, dest: Path, frames: int, size: tuple[int, int], fps: float | None = None
) -> Path:
    """Write the first ``frames`` frames of ``source`` to ``dest`` resized to ``size``
    (width, height), re-encoded with OpenCV (mp4v) at ``fps`` (default: the source's)."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    rate = fps if fps is not None else cap.get(cv2.CAP_PROP_FPS)
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), rate, size)
    try:
        for _ in range(frames):
            ok, bgr = cap.read()
            assert ok, f"{source} has fewer than {frames} frames"
            out.write(cv2.resize(bgr, size))
    finally:
        out.release()
        cap.release()
    return dest

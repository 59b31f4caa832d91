"""The reliability diagram of a calibrated score, drawn as a PNG with OpenCV (no plotting
library): per bin of predicted probability, the share that was right, against the diagonal.

    from bench.metrics import reliability, top_answers
    draw_reliability(reliability(*top_answers(records)), "grocery (products)", ece)
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

W, H = 640, 520  # picture size
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 50, 110  # plot margins
BAR = (200, 120, 40)  # BGR: accuracy bars
GAP = (60, 60, 220)  # BGR: the gap to the diagonal
INK = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, s: str, x: int, y: int, scale: float = 0.45) -> None:
    cv2.putText(img, s, (x, y), FONT, scale, INK, 1, cv2.LINE_AA)


def draw_reliability(table: list[dict], title: str, ece: float) -> np.ndarray:
    """The diagram of one `bench.metrics.reliability` table.

    Args:
        table: per bin ``lo``, ``hi``, ``count``, ``confidence``, ``accuracy``.
        title: first line of the title (set and kind); the ECE is added to it.
        ece: the expected calibration error of the table.

    Returns:
        uint8 (520, 640, 3) BGR picture: bars of the share right per bin, the gap to the
        bin's mean score in red, the diagonal (perfect calibration), and each bin's count.
    """
    img = np.full((H, W, 3), 255, dtype=np.uint8)
    x0, y0, x1, y1 = LEFT, TOP, W - RIGHT, H - BOTTOM

    def px(u: float, v: float) -> tuple[int, int]:
        return int(round(x0 + u * (x1 - x0))), int(round(y1 - v * (y1 - y0)))

    for t in np.linspace(0.0, 1.0, 6):  # grid and tick labels
        cv2.line(img, px(0, t), px(1, t), (225, 225, 225), 1)
        _text(img, f"{t:.1f}", x0 - 36, px(0, t)[1] + 5)
        _text(img, f"{t:.1f}", px(t, 0)[0] - 12, y1 + 20)
    for b in table:
        if not b["count"]:
            continue
        left, right = px(b["lo"], 0)[0] + 3, px(b["hi"], 0)[0] - 3
        top = px(0, b["accuracy"])[1]
        cv2.rectangle(img, (left, top), (right, y1), BAR, -1)
        conf = px(0, b["confidence"])[1]
        cv2.rectangle(img, (left, min(top, conf)), (right, max(top, conf)), GAP, 2)
        _text(img, str(b["count"]), left + 2, y1 + 40, 0.4)
    cv2.line(img, px(0, 0), px(1, 1), INK, 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    ece_text = "n/a" if math.isnan(ece) else f"{ece:.3f}"
    _text(img, f"{title}: ECE {ece_text} (10 bins)", x0, 30, 0.55)
    _text(img, "score of the photo's top candidate (bins); count per bin below", x0, y1 + 62)
    _text(img, "blue: share right; red: gap to the bin's mean score; line: perfect", x0, y1 + 84)
    _text(img, "share right", 8, y0 - 8, 0.4)
    return img


def write_reliability(path: Path, table: list[dict], title: str, ece: float) -> Path:
    """Draw the diagram (see `draw_reliability`) and write it as a PNG; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), draw_reliability(table, title, ece)):
        raise OSError(f"cannot write {path}")
    return path

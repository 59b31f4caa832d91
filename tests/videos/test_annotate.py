"""`videos.annotate` on frames of the real shelf clip: boxes drawn where the lines say, the
raw frame (less the VP8 codec's loss) elsewhere; a skipped frame (stride) keeps the boxes of
the last processed one; every input frame is written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import BadInput
from tests.clips import cut_clip
from videos.annotate import annotate_video, caption


@pytest.fixture(scope="module")
def short(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 frames of coke-shelf.mp4 at 320x180 (mp4v)."""
    path = tmp_path_factory.mktemp("clip") / "short.mp4"
    return cut_clip(data_dir / "video" / "coke-shelf.mp4", path, 8, (320, 180), fps=10.0)


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1].astype(np.int16))
    cap.release()
    return frames


BOX = [40.0, 30.0, 200.0, 150.0]


@pytest.mark.parametrize("stride", [1, 4])
def test_boxes_where_the_lines_are(short: Path, tmp_path: Path, stride: int) -> None:
    lines = [{"frame": 0, "box": BOX, "item": "coke", "score": 0.91, "verified": True, "track": 3}]
    out = tmp_path / "a.webm"
    done = annotate_video(short, lines, out, 10.0, stride)
    raw, annotated = _frames(short), _frames(out)
    assert done.frames == len(raw) == len(annotated) == 8 and done.size == (320, 180)
    x1, y1, x2, y2 = (int(v) for v in BOX)
    for index, (a, b) in enumerate(zip(annotated, raw, strict=True)):
        diff = np.abs(a - b).sum(axis=2)
        edge = diff[y1 + 1 : y2 - 1, x1 : x1 + 2].mean()  # the box's left side
        if index < stride:  # frame 0 and, with a stride, the frames that show its boxes
            assert edge > 100, (index, edge)
        else:  # processed later with no detection: the raw frame, less the codec's loss
            assert diff.mean() < 25 and edge < 60, (index, diff.mean(), edge)
    assert done.boxes == stride


def test_captions_and_errors(tmp_path: Path) -> None:
    assert caption({"item": "coke", "score": 0.912, "verified": True, "track": 3}) == (
        "#3 coke 0.91 verified"
    )
    assert caption({"item": "coke", "score": 0.5, "verified": False, "track": None}) == "coke 0.50"
    assert caption({"item": None, "class": "bottle", "track": 2}) == "#2 bottle"
    junk = tmp_path / "junk.video"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(BadInput, match="no frame"):
        annotate_video(junk, [], tmp_path / "x.webm", 10.0)


def test_captions_never_cover_one_another() -> None:
    """Boxes stacked on one another (a shelf of bottles): every caption finds its own place."""
    from videos.annotate import place_caption

    def overlap(a: tuple, b: tuple) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    placed: list[tuple[int, int, int, int]] = []
    for i in range(8):
        box = (100 + i * 4, 100 + i * 3, 300, 300)
        tx, ty = place_caption(box, 180, 16, (640, 360), placed)
        rect = (tx, ty, tx + 180, ty + 16)
        assert ty >= 0 and ty + 16 <= 360
        assert not any(overlap(rect, other) for other in placed), (i, rect, placed)
        placed.append(rect)

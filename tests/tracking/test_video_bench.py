"""bench.video: the clips' ground truth read in both layouts, and a short real run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from bench.video import iou, item_truths, main

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


def test_item_truths_of_both_clips() -> None:
    shelf = item_truths(json.loads((VIDEO / "coke-shelf.json").read_text()))
    limao = shelf["campo-largo-cha-mate-limao"]
    assert set(limao.shots) == {"A", "B"} and limao.in_view == set(range(0, 158))
    assert (63, (228, 168, 394, 684)) in limao.crops
    cars = item_truths(json.loads((VIDEO / "highway-cars.json").read_text()))
    pickup = cars["green-pickup"]
    assert pickup.in_view == set(range(54, 105)) and pickup.present == set(range(54, 141))
    assert list(pickup.shots) == ["clip"] and [f for f, _ in pickup.crops] == [60, 70]


def test_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=np.float32)
    assert np.allclose(iou(boxes, (0, 0, 10, 10)), [1.0, 1 / 3, 0.0])


def test_short_run_prints_the_final_line(capsys, offline_env) -> None:
    assert (
        main(
            [
                str(VIDEO / "highway-cars.mp4"),
                "--catalog",
                str(VIDEO / "highway-cars-catalog"),
                "--frames",
                "6",
                "--baseline-frames",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("  green-pickup") for line in out)
    assert re.fullmatch(
        r"fps=[\d.]+ verify_per_frame_tracking=[\d.]+ verify_per_frame_no_tracking=[\d.]+ "
        r"frames=6 verdict_lag_p50=\d+ verdict_lag_p90=\d+",
        out[-1],
    )

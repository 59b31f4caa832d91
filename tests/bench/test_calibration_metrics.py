"""ECE, reliability bins and their diagram, and the calibration fit's top-candidate rescaling."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bench.calibrate import _features, fit, half_of
from bench.metrics import expected_calibration_error, reliability, summarize, top_answers
from bench.reliability import write_reliability


def test_ece_of_a_calibrated_score_is_small() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 200_000)
    right = rng.uniform(0, 1, scores.size) < scores  # right with probability = score
    assert expected_calibration_error(scores, right) < 0.01


def test_ece_by_hand() -> None:
    # bin [0.9, 1.0]: 4 answers at 0.95, half right -> gap 0.45; bin [0.2, 0.3): 4 at 0.25,
    # all wrong -> gap 0.25; equal weights: (0.45 + 0.25) / 2
    scores = np.array([0.95] * 4 + [0.25] * 4)
    right = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    assert expected_calibration_error(scores, right) == pytest.approx(0.35)
    table = reliability(scores, right)
    assert [b["count"] for b in table] == [0, 0, 4, 0, 0, 0, 0, 0, 0, 4]
    assert table[9]["accuracy"] == 0.5 and table[2]["confidence"] == pytest.approx(0.25)
    assert reliability(np.array([1.0]), np.array([True]))[9]["count"] == 1  # 1.0: last bin
    assert math.isnan(expected_calibration_error(np.array([]), np.array([], dtype=bool)))


def cand(item: str, score: float, sim: float = 0.5, inliers: int = 0) -> dict:
    return {"item_id": item, "score": score, "similarity": sim, "inliers": inliers, "spread": 0.0}


def test_top_answers_take_the_best_crop_and_count_open_set_as_wrong() -> None:
    records = [
        {"path": "a", "true": "x", "crops": [[cand("y", 0.4)], [cand("x", 0.9), cand("y", 0.1)]]},
        {"path": "b", "true": None, "crops": [[cand("x", 0.7)]]},
        {"path": "c", "true": "x", "crops": []},  # no candidate: left out
    ]
    scores, right = top_answers(records)
    assert scores.tolist() == [0.9, 0.7] and right.tolist() == [True, False]


def test_reliability_diagram_png(tmp_path) -> None:
    scores, right = np.array([0.1, 0.5, 0.55, 0.9]), np.array([False, True, False, True])
    path = write_reliability(tmp_path / "d" / "rel.png", reliability(scores, right), "t", 0.2)
    image = cv2.imread(str(path))
    assert image.shape == (520, 640, 3) and (image < 128).any()  # drawn, not blank


def synthetic(n: int, seed: int, open_set: bool = False) -> list[dict]:
    """Photos whose true item ``i0`` has a higher similarity (noisy) than 19 others, as in a
    dump; ``open_set``: photos of nothing in the catalog whose best candidate ``i0`` looks
    about as good as a right answer (similar, but no keypoint inliers)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        sims = rng.normal(0.35, 0.08, 20)
        sims[0] = rng.normal(0.6, 0.1) if open_set else rng.normal(0.55, 0.12)
        inliers = np.where(rng.uniform(size=20) < 0.1, rng.integers(8, 40, 20), 0)
        inliers[0] = 0 if open_set else rng.integers(0, 80)
        crop = [
            {"item_id": f"i{j}", "similarity": float(s), "inliers": int(k), "spread": 0.0}
            for j, (s, k) in enumerate(zip(sims, inliers, strict=True))
        ]
        true, path = (None, f"_none/s{i}.jpg") if open_set else ("i0", f"q/p{i}.jpg")
        records.append({"path": path, "true": true, "crops": [crop]})
    return records


def test_fit_is_monotone_and_calibrates_the_top_candidate() -> None:
    train, test = synthetic(300, 0), synthetic(300, 1)
    cal = fit(train, precision=0.95)
    assert all(w >= 0 for w in cal.weights) and 0.3 <= cal.threshold <= 0.99
    from bench.calibrate import rescore

    m = summarize(rescore(test, cal))
    assert m["ece"] < 0.08 and m["confirm_precision"] >= 0.9
    # more evidence never lowers the score
    base = _features([{"similarity": 0.5, "inliers": 10, "spread": 0.1}])
    more = _features([{"similarity": 0.6, "inliers": 30, "spread": 0.3}])
    assert cal.score(more)[0] > cal.score(base)[0]


def test_half_of_ignores_where_the_set_lies() -> None:
    assert half_of("../shared/data/x/queries/a/b.jpg") == half_of("/abs/x/queries/a/b.jpg")
    halves = {half_of(f"queries/item/{i}.jpg") for i in range(50)}
    assert halves == {"fit", "holdout"}


def test_merge_dumps_keeps_each_photo_once() -> None:
    from bench.calibrate import merge_dumps

    sample = [{"path": "../shared/data/dogs/queries/7/7.1.jpg", "n": 1}]
    unseen = [
        {"path": "/elsewhere/dogs/queries/7/7.1.jpg", "n": 2},  # the same photo, other path
        {"path": "/elsewhere/dogs/queries/8/8.1.jpg", "n": 3},
    ]
    assert [r["n"] for r in merge_dumps([sample, unseen])] == [1, 3]
    assert merge_dumps([]) == []


@pytest.mark.slow  # loads the offline models twice
def test_calibrate_saves_to_the_configured_file_and_the_service_loads_it(
    tmp_path, monkeypatch, capsys, settings
) -> None:
    """A deployment's own calibration (SIGHTING_CALIBRATION_FILE): written by bench.calibrate,
    loaded by the pipeline; the shipped file is left alone, a missing file is refused."""
    import json

    from bench.calibrate import main as calibrate_main
    from core.errors import ModelUnavailable
    from core.settings import get_settings
    from matching.engine import load_pipeline
    from matching.score import CALIBRATION_FILE, load_calibrations

    shipped = CALIBRATION_FILE.read_bytes()
    dump = tmp_path / "mine.json"
    dump.write_text(json.dumps({"records": synthetic(200, 3)}))
    mine = tmp_path / "calibration.json"
    monkeypatch.setenv("SIGHTING_CALIBRATION_FILE", str(mine))
    get_settings.cache_clear()
    try:
        assert calibrate_main([f"products={dump}", "--save"]) == 0
    finally:
        get_settings.cache_clear()
    assert f"wrote {mine}" in capsys.readouterr().out
    assert CALIBRATION_FILE.read_bytes() == shipped
    fitted, original = load_calibrations(mine), load_calibrations()
    assert fitted["products"] != original["products"]
    assert fitted["animals"] == original["animals"]  # not refitted: the shipped one

    pipeline = load_pipeline(settings.model_copy(update={"calibration_file": mine}))
    assert pipeline.calibrations["products"] == fitted["products"]
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_pipeline(settings.model_copy(update={"calibration_file": tmp_path / "none.json"}))


def test_open_set_photos_bound_the_threshold_without_entering_the_fit() -> None:
    from bench.calibrate import rescore

    train, others = synthetic(300, 0), synthetic(300, 2, open_set=True)
    plain = fit(train, precision=0.95)
    bounded = fit(train, precision=0.95, strangers=others, max_open_set=0.03)
    assert bounded.weights == plain.weights and bounded.bias == plain.bias  # not fitted on
    assert bounded.threshold > plain.threshold
    assert summarize(rescore(others, plain))["open_set_false_confirm"] > 0.03
    assert summarize(rescore(others, bounded))["open_set_false_confirm"] <= 0.03
    # the bound holds on strangers the threshold never saw, give or take sampling noise
    assert (
        summarize(rescore(synthetic(300, 3, open_set=True), bounded))["open_set_false_confirm"]
        <= 0.06
    )


def test_calibrate_command_takes_open_set_dumps(tmp_path, monkeypatch, capsys) -> None:
    import json

    from bench.calibrate import main as calibrate_main
    from core.settings import get_settings

    dump, open_dump = tmp_path / "mine.json", tmp_path / "open.json"
    dump.write_text(json.dumps({"records": synthetic(200, 3)}))
    open_dump.write_text(json.dumps({"records": synthetic(100, 4, open_set=True)}))
    monkeypatch.setenv("SIGHTING_CALIBRATION_FILE", str(tmp_path / "calibration.json"))
    get_settings.cache_clear()
    try:
        assert calibrate_main([f"products={dump}", f"--open-set=products={open_dump}"]) == 0
        out = capsys.readouterr().out
        assert "open-set photos (--open-set dumps and the sample's, 100)" in out
        with pytest.raises(SystemExit):  # an open-set dump for a kind not fitted
            calibrate_main([f"products={dump}", f"--open-set=animals={open_dump}"])
    finally:
        get_settings.cache_clear()


def test_wilson_interval() -> None:
    from core.stats import wilson_interval

    assert wilson_interval(97, 100, 0.0) == pytest.approx((0.97, 0.97))
    lo, hi = wilson_interval(97, 100, 1.96)  # the textbook 95 % interval of 97 / 100
    assert lo == pytest.approx(0.9155, abs=1e-3) and hi == pytest.approx(0.9897, abs=1e-3)
    assert wilson_interval(0, 0, 1.0) == (0.0, 1.0)
    assert wilson_interval(0, 50, 1.0)[0] == 0.0 and wilson_interval(50, 50, 1.0)[1] == 1.0


def test_bound_z_keeps_the_targets_with_a_margin() -> None:
    from bench.calibrate import rescore
    from core.stats import wilson_interval

    train, strangers = synthetic(300, 0), synthetic(300, 2, open_set=True)
    plain = fit(train, precision=0.95, strangers=strangers, max_open_set=0.05)
    bounded = fit(train, precision=0.95, strangers=strangers, max_open_set=0.05, bound_z=1.0)
    assert bounded.weights == plain.weights  # only the threshold moves
    assert bounded.threshold > plain.threshold
    m = summarize(rescore(train, bounded))
    right = round(m["confirm_precision"] * m["confirmed"])
    assert wilson_interval(right, int(m["confirmed"]), 1.0)[0] >= 0.95
    rate = summarize(rescore(strangers, bounded))["open_set_false_confirm"]
    assert wilson_interval(round(rate * 300), 300, 1.0)[1] <= 0.05


def test_calibrate_prints_cross_validated_figures_per_group(tmp_path, capsys) -> None:
    import json

    from bench.calibrate import main as calibrate_main

    records = synthetic(200, 5)
    for i, r in enumerate(records):
        r["group"] = "Packages" if i % 2 else "Fruit"
    dump = tmp_path / "grouped.json"
    dump.write_text(json.dumps({"records": records}))
    assert calibrate_main([f"products={dump}"]) == 0  # no --save: nothing written
    out = capsys.readouterr().out
    assert "2-fold   Fruit (100 photos): recall@1=" in out
    assert "2-fold   Packages (100 photos): recall@1=" in out

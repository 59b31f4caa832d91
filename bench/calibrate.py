"""Fit the fused score of each catalog kind (`matching.score`) on benchmark dumps.

    python -m bench.accuracy ../shared/data/grocery --limit 200 --json out/grocery.json
    python -m bench.accuracy ../shared/data/dogs --kind animals --limit 200 --json out/dogs.json
    python -m bench.calibrate products=out/grocery.json animals=out/dogs.json [--save]

For each kind, the candidates of every crop are labelled (same item or not) and a logistic
model with non-negative weights is fitted on half of the photos (split by a hash of the path);
the threshold is the lowest that keeps confirmation precision >= ``--precision`` on that half.
Metrics are printed on the other, held-out half, so the figures are not the fit's own. Use the
benchmark's own sample (seed 0): the shipped embedding heads were trained with it left out, so
it is the one set of photos neither the heads nor (for the held-out half) the fit have seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from bench.metrics import summarize
from matching.score import (
    CALIBRATION_FILE,
    KINDS,
    Calibration,
    candidate_features,
    fit_logistic,
    load_calibrations,
    save_calibrations,
)


def _half(path: str) -> int:
    return hashlib.sha1(path.encode()).digest()[0] % 2


def _features(crop: list[dict]) -> np.ndarray:
    return candidate_features(
        np.array([c["similarity"] for c in crop]),
        np.array([c["inliers"] for c in crop]),
        np.array([c["spread"] for c in crop]),
        np.array([c.get("checked", True) for c in crop]),
    )


def rescore(records: list[dict], cal: Calibration) -> list[dict]:
    """Records with every candidate's score and verified flag recomputed by ``cal``."""
    out = []
    for r in records:
        crops = []
        for crop in r["crops"]:
            scores = cal.score(_features(crop)) if crop else []
            crops.append(
                [
                    c | {"score": float(s), "verified": bool(s >= cal.threshold)}
                    for c, s in zip(crop, scores, strict=True)
                ]
            )
        out.append(r | {"crops": crops})
    return out


def _dataset(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for r in records:
        for crop in r["crops"]:
            if crop:
                xs.append(_features(crop))
                ys.append(np.array([c["item_id"] == r["true"] for c in crop], dtype=np.float64))
    return np.concatenate(xs), np.concatenate(ys)


def choose_threshold(records: list[dict], cal: Calibration, precision: float) -> float:
    """Lowest threshold whose confirmation precision on ``records`` is >= ``precision``."""
    for t in np.round(np.arange(0.30, 0.995, 0.01), 2):
        m = summarize(rescore(records, Calibration(cal.weights, cal.bias, float(t))))
        if m["confirmed"] and m["confirm_precision"] >= precision:
            return float(t)
    return 0.99


def fit_kind(name: str, records: list[dict], precision: float) -> Calibration:
    """Fit one kind's calibration on half of ``records``; print held-out metrics."""
    fit = [r for r in records if _half(r["path"]) == 0]
    held = [r for r in records if _half(r["path"]) == 1]
    x, y = _dataset(fit)
    weights, bias = fit_logistic(x, y)
    cal = Calibration(tuple(float(w) for w in weights), float(bias), 0.5)
    threshold = choose_threshold(fit, cal, precision)
    m = summarize(rescore(held, Calibration(cal.weights, cal.bias, threshold)))
    print(
        f"{name:<9} fit on {len(fit)} photos ({len(y)} candidates, {int(y.sum())} positive); "
        f"weights={np.round(weights, 3).tolist()} bias={bias:.3f} threshold={threshold}"
    )
    print(
        f"{'':<9} held out ({int(m['queries'])} photos): recall@1={m['recall@1']:.3f} "
        f"recall@5={m['recall@5']:.3f} confirm_precision={m['confirm_precision']:.3f} "
        f"confirm_recall={m['confirm_recall']:.3f} "
        f"open_set_false_confirm={m['open_set_false_confirm']:.3f}"
    )
    return Calibration(
        cal.weights,
        cal.bias,
        threshold,
        fitted_on=f"bench.calibrate on {len(fit)} photos of {name} dumps (held-out half below)",
        metrics={"held_out": {k: round(v, 4) for k, v in m.items()}},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.calibrate", description=__doc__.split("\n")[1]
    )
    parser.add_argument(
        "dumps", nargs="+", metavar="KIND=FILE", help="JSON from bench.accuracy --json, per kind"
    )
    parser.add_argument("--precision", type=float, default=0.95, help="target confirm precision")
    parser.add_argument("--save", action="store_true", help=f"write {CALIBRATION_FILE.name}")
    args = parser.parse_args(argv)

    calibrations = load_calibrations()
    for spec in args.dumps:
        kind, _, path = spec.partition("=")
        if kind not in KINDS or not path:
            parser.error(f"expected KIND=FILE with KIND in {KINDS}, got {spec!r}")
        records = json.loads(Path(path).read_text())["records"]
        calibrations[kind] = fit_kind(kind, records, args.precision)
    if args.save:
        save_calibrations(calibrations)
        print(f"wrote {CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

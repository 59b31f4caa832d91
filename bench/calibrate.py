"""Fit the fused score (`matching.score.Calibration`) on benchmark dumps and choose its threshold.

    python -m bench.accuracy ../shared/data/grocery --limit 400 --seed 1 --json out/g.json
    python -m bench.accuracy ../shared/data/dogs --limit 400 --seed 1 --json out/d.json
    python -m bench.calibrate out/g.json out/d.json [--precision 0.95] [--save]

Candidates of every crop are labelled (same item or not) and a logistic model with
non-negative weights is fitted on half of the photos (split by a hash of the path); the
threshold is the lowest that keeps confirmation precision >= ``--precision`` on that half.
Metrics are printed on the other, held-out half, so the figures are not the fit's own.
Use a seed for these dumps other than the benchmark's (0) so the benchmark sample stays unseen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from bench.metrics import summarize
from matching.score import Calibration, candidate_features, fit_logistic


def _half(path: str) -> int:
    return hashlib.sha1(path.encode()).digest()[0] % 2


def _rescore(records: list[dict], cal: Calibration) -> list[dict]:
    out = []
    for r in records:
        crops = []
        for crop in r["crops"]:
            if not crop:
                crops.append([])
                continue
            feats = _features(crop)
            scores = cal.score(feats)
            crops.append(
                [
                    c | {"score": float(s), "verified": bool(s >= cal.threshold)}
                    for c, s in zip(crop, scores, strict=True)
                ]
            )
        out.append(r | {"crops": crops})
    return out


def _features(crop: list[dict]) -> np.ndarray:
    return candidate_features(
        np.array([c["similarity"] for c in crop]),
        np.array([c["inliers"] for c in crop]),
        np.array([c["spread"] for c in crop]),
    )


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
        m = summarize(_rescore(records, Calibration(cal.weights, cal.bias, float(t))))
        if m["confirmed"] and m["confirm_precision"] >= precision:
            return float(t)
    return 0.99


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.calibrate", description=__doc__.split("\n")[1]
    )
    parser.add_argument("dumps", type=Path, nargs="+", help="JSON files from bench.accuracy --json")
    parser.add_argument("--precision", type=float, default=0.95, help="target confirm precision")
    parser.add_argument("--save", action="store_true", help="write matching/calibration.json")
    args = parser.parse_args(argv)

    per_set = {p.stem: json.loads(p.read_text())["records"] for p in args.dumps}
    fit = [r for rs in per_set.values() for r in rs if _half(r["path"]) == 0]
    x, y = _dataset(fit)
    weights, bias = fit_logistic(x, y)
    cal = Calibration(tuple(float(w) for w in weights), float(bias), 0.5)
    threshold = choose_threshold(fit, cal, args.precision)
    metrics = {}
    print(f"fitted on {len(fit)} photos, {len(y)} candidates ({int(y.sum())} positive)")
    print(f"weights={np.round(weights, 3).tolist()} bias={bias:.3f} threshold={threshold}")
    print(f"{'held-out set':<14}{'r@1':>7}{'r@5':>7}{'prec':>7}{'c_rec':>7}{'open_fc':>8}{'n':>6}")
    final = Calibration(cal.weights, cal.bias, threshold)
    for name, records in per_set.items():
        held = [r for r in records if _half(r["path"]) == 1]
        m = summarize(_rescore(held, final))
        metrics[name] = {k: round(v, 4) for k, v in m.items()}
        print(
            f"{name:<14}{m['recall@1']:>7.3f}{m['recall@5']:>7.3f}"
            f"{m['confirm_precision']:>7.3f}{m['confirm_recall']:>7.3f}"
            f"{m['open_set_false_confirm']:>8.3f}{int(m['queries']):>6}"
        )
    if args.save:
        Calibration(
            final.weights,
            final.bias,
            threshold,
            fitted_on=f"bench.calibrate on {', '.join(per_set)} (half of photos)",
            metrics={"held_out": metrics},
        ).save()
        print("wrote matching/calibration.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

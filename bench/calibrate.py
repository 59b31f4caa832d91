"""Fit the fused score of each catalog kind (`matching.score`) on benchmark dumps.

    python -m bench.accuracy ../shared/data/grocery --limit 600 --json out/grocery.json
    python -m bench.accuracy ../shared/data/dogs --kind animals --limit 200 --json out/dogs.json
    python -m bench.calibrate products=out/grocery.json animals=out/dogs.json [--save]

A kind may be named several times (``animals=out/dogs.json animals=out/dogs-unseen.json``):
its dumps are merged, each photo once (`merge_dumps`). ``--open-set animals=out/dogs-open.json``
(a ``bench.accuracy --open-set`` dump: every photo of things not in the catalog) bounds the
threshold: it may confirm at most ``--max-open-set`` (3 %) of those photos.

For each kind, the candidates of every crop are labelled (same item or not) and a logistic
model with non-negative weights is fitted. That model ranks well but, fitted over every
candidate (a hundred per photo, nearly all wrong), it is underconfident about the answer
people act on, each photo's top candidate. So a second, one-feature logistic fit (Platt
scaling) on the top candidates' logits (open-set photos included) rescales it; being monotone
it changes no ranking, and it folds into the weights and bias. The threshold is the lowest that
keeps confirmation precision >= ``--precision`` on the fitted photos (and, with ``--open-set``,
the open-set false-confirm rate <= ``--max-open-set``), or rather their Wilson bounds
``--bound-z`` standard errors out (0.5 by default, as the shipped calibration: a threshold fitted
to the point estimates misses its targets on about half of new samples).

The shipped calibration is fitted on all the photos. The printed metrics are 2-fold
cross-validated: the photos are split in halves by a hash of ``<item>/<file>``, and each half
is scored by the calibration fitted on the other half. Use the benchmark's own samples (seed
0; ``--limit 600`` for grocery, 200 for dogs): the shipped models were trained with them left out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.metrics import by_group, summarize
from core import cli
from core.kinds import KINDS
from core.stats import wilson_interval
from matching.score import (
    CALIBRATION_FILE,
    Calibration,
    candidate_features,
    fit_logistic,
    load_calibrations,
    save_calibrations,
)


def _half(path: str) -> int:
    """0 or 1 by a hash of the photo's ``<item>/<file>`` (the same whatever the set's path)."""
    key = "/".join(Path(path).parts[-2:])
    return hashlib.sha1(key.encode()).digest()[0] % 2


def half_of(path: str) -> str:
    """``"fit"`` or ``"holdout"``: the half of the photos ``path`` falls in (by its hash)."""
    return "holdout" if _half(path) else "fit"


def merge_dumps(dumps: list[list[dict]]) -> list[dict]:
    """The records of several dumps of one kind, each photo (``<item>/<file>``) once: the
    first dump's record of a photo that two runs scored (say the benchmark sample and the
    unseen-identities run) is kept."""
    seen: set[str] = set()
    merged = []
    for records in dumps:
        for r in records:
            key = "/".join(Path(r["path"]).parts[-2:])
            if key not in seen:
                seen.add(key)
                merged.append(r)
    return merged


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


class _Confirmations:
    """What `summarize` counts of ``rescore``d records verified at a threshold, for many
    thresholds: each (photo, item)'s best score, ranked once (a `summarize` per threshold
    re-ranked every photo for figures the threshold does not change)."""

    def __init__(self, scored: list[dict]) -> None:
        pairs: list[float] = []  # each (photo, item)'s best score
        true: list[float] = []  # the photo's true item's best score (-inf: not a candidate)
        unknown: list[float] = []  # an open-set photo's best score (-inf: no candidate)
        for r in scored:
            best: dict[str, float] = {}
            for crop in r["crops"]:
                for c in crop:
                    best[c["item_id"]] = max(c["score"], best.get(c["item_id"], -np.inf))
            pairs.extend(best.values())
            true.append(best.get(r["true"], -np.inf) if r["true"] is not None else -np.inf)
            if r["true"] is None:
                unknown.append(max(best.values(), default=-np.inf))
        self._pairs, self._true = np.asarray(pairs), np.asarray(true)
        self._unknown = np.asarray(unknown)

    def at(self, threshold: float) -> tuple[int, int, float]:
        """(confirmed, correct, open_set_false_confirm) as `summarize` counts them."""
        confirmed = int((self._pairs >= threshold).sum())
        correct = int((self._true >= threshold).sum())
        n = len(self._unknown)
        rate = int((self._unknown >= threshold).sum()) / n if n else float("nan")
        return confirmed, correct, rate


def _dataset(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for r in records:
        for crop in r["crops"]:
            if crop:
                xs.append(_features(crop))
                ys.append(np.array([c["item_id"] == r["true"] for c in crop], dtype=np.float64))
    return np.concatenate(xs), np.concatenate(ys)


def choose_threshold(
    records: list[dict],
    cal: Calibration,
    precision: float,
    strangers: Sequence[dict] = (),
    max_open_set: float = 1.0,
    bound_z: float = 0.0,
) -> float:
    """Lowest threshold whose confirmation precision on ``records`` is >= ``precision`` and
    that confirms at most ``max_open_set`` of the open-set photos (those of ``records`` and
    ``strangers``, each photo once).

    With ``bound_z`` > 0 the Wilson bounds (`wilson_interval`) ``bound_z`` standard errors out
    must meet the targets, not the point estimates: a threshold fitted to the point estimate
    misses its targets on about half of new samples.
    """
    open_set = merge_dumps([[r for r in records if r["true"] is None], list(strangers)])
    scored = _Confirmations(rescore(records, cal))  # scores, once
    open_scored = _Confirmations(rescore(open_set, cal))
    for t in np.round(np.arange(0.30, 0.995, 0.01), 2):
        confirmed, correct, _ = scored.at(float(t))
        if not confirmed:
            continue
        right = round(correct / confirmed * confirmed)  # as summarize's precision x confirmed
        if wilson_interval(right, confirmed, bound_z)[0] < precision:
            continue
        if open_set:
            rate = open_scored.at(float(t))[2]
            confirmed = round(rate * len(open_set))
            if wilson_interval(confirmed, len(open_set), bound_z)[1] > max_open_set:
                continue
        return float(t)
    return 0.99


def rescale_top(records: list[dict], weights: np.ndarray, bias: float) -> tuple[np.ndarray, float]:
    """Platt-rescale ``sigmoid(x @ weights + bias)`` so that each photo's top candidate's
    score is calibrated; returns the folded ``(a * weights, a * bias + c)``."""
    logits, right = [], []
    for r in records:
        best: tuple[float, bool] | None = None
        for crop in r["crops"]:
            if not crop:
                continue
            z = _features(crop).astype(np.float64) @ weights + bias
            i = int(np.argmax(z))
            if best is None or z[i] > best[0]:
                best = (float(z[i]), crop[i]["item_id"] == r["true"])
        if best is not None:
            logits.append(best[0])
            right.append(best[1])
    if len(set(right)) < 2:  # all right or all wrong: nothing to rescale against
        return weights, bias
    (a,), c = fit_logistic(np.asarray(logits)[:, None], np.asarray(right, dtype=np.float64))
    return a * weights, a * bias + c


def fit(
    records: list[dict],
    precision: float,
    strangers: Sequence[dict] = (),
    max_open_set: float = 1.0,
    bound_z: float = 0.0,
) -> Calibration:
    """Fusion weights (logistic, then Platt-rescaled on the top candidates), fitted on
    ``records``, and the lowest threshold keeping confirmation precision >= ``precision`` on
    them and the open-set false-confirm rate <= ``max_open_set`` on their open-set photos and
    ``strangers`` (open-set photos used for the threshold only: a large share of them in the
    fit would teach it a world where most photos show nothing of the catalog)."""
    x, y = _dataset(records)
    weights, bias = rescale_top(records, *fit_logistic(x, y))
    cal = Calibration(tuple(float(w) for w in weights), float(bias), 0.5)
    threshold = choose_threshold(records, cal, precision, strangers, max_open_set, bound_z)
    return Calibration(cal.weights, cal.bias, threshold)


def _line(m: dict[str, float]) -> str:
    return (
        f"recall@1={m['recall@1']:.3f} recall@5={m['recall@5']:.3f} "
        f"confirm_precision={m['confirm_precision']:.3f} confirm_recall={m['confirm_recall']:.3f} "
        f"open_set_false_confirm={m['open_set_false_confirm']:.3f} ece={m['ece']:.3f}"
    )


def fit_kind(
    name: str,
    records: list[dict],
    precision: float,
    strangers: Sequence[dict] = (),
    max_open_set: float = 1.0,
    bound_z: float = 0.0,
) -> Calibration:
    """Fit one kind's calibration on all ``records`` (threshold: see `fit`); print 2-fold
    cross-validated metrics.

    The photos are split in two halves (`half_of`); each half is scored by a calibration
    fitted on the other one, and the metrics are those of the two scored halves together:
    what to expect on photos the fit has not seen (about 100 a half: a few points of noise).
    ``strangers`` are split the same way; their cross-validated false-confirm rate is printed.
    """
    halves = [[r for r in records if _half(r["path"]) == h] for h in (0, 1)]
    s_halves = [[r for r in strangers if _half(r["path"]) == h] for h in (0, 1)]
    scored, s_scored = [], []
    for h in (0, 1):
        other = fit(halves[1 - h], precision, s_halves[1 - h], max_open_set, bound_z)
        scored += rescore(halves[h], other)
        s_scored += rescore(s_halves[h], other)
        m = summarize(rescore(halves[h], other))
        print(f"{name:<9} {half_of(halves[h][0]['path']) if halves[h] else h:<8} {_line(m)}")
    cv = summarize(scored)
    if strangers:
        cv["strangers_false_confirm"] = summarize(s_scored)["open_set_false_confirm"]
        cv["strangers"] = len(s_scored)
    final = fit(records, precision, strangers, max_open_set, bound_z)
    print(
        f"{name:<9} fitted on {len(records)} photos: weights={np.round(final.weights, 3).tolist()} "
        f"bias={final.bias:.3f} threshold={final.threshold}"
    )
    print(f"{name:<9} 2-fold   {_line(cv)}")
    groups = {g: m for g, m in by_group(scored).items() if g not in ("-", "_none")}
    if len(groups) > 1:  # where the confirmations come from (packages vs produce, say)
        for group, m in groups.items():
            print(f"{name:<9} 2-fold   {group} ({int(m['known'])} photos): {_line(m)}")
    if strangers:
        print(
            f"{name:<9} 2-fold   open-set photos (--open-set dumps and the sample's, "
            f"{cv['strangers']}): false_confirm={cv['strangers_false_confirm']:.3f} "
            f"(limit {max_open_set})"
        )
    return Calibration(
        final.weights,
        final.bias,
        final.threshold,
        fitted_on=(
            f"bench.calibrate on {len(records)} photos of {name} dumps "
            f"(threshold: precision and open-set bounds at z={bound_z:g}; "
            "metrics: 2-fold cross-validated)"
        ),
        metrics={"cross_validated": {k: round(v, 4) for k, v in cv.items()}},
    )


@cli.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.calibrate", description=__doc__.split("\n")[1], epilog=cli.EXIT_STATUS
    )
    parser.add_argument(
        "dumps",
        nargs="+",
        metavar="KIND=FILE",
        help="JSON from bench.accuracy --json; a kind named twice merges its dumps",
    )
    parser.add_argument("--precision", type=float, default=0.97, help="target confirm precision")
    parser.add_argument(
        "--open-set",
        action="append",
        default=[],
        metavar="KIND=FILE",
        help="a bench.accuracy --open-set dump: its photos (things not in the catalog) bound "
        "the threshold by --max-open-set, and are not fitted on",
    )
    parser.add_argument(
        "--max-open-set",
        type=float,
        default=0.03,
        help="most open-set photos the threshold may confirm (with --open-set dumps)",
    )
    parser.add_argument(
        "--bound-z",
        type=float,
        default=0.5,
        help="meet --precision and --max-open-set with the Wilson bound this many standard "
        "errors out (default 0.5, as the shipped calibration; 0 = the point estimates: more "
        "confirmations, whose precision misses the target on about half of new samples)",
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help=f"write SIGHTING_CALIBRATION_FILE (default: {CALIBRATION_FILE.name} in matching/)",
    )
    args = parser.parse_args(argv)

    from core.settings import get_settings

    target = get_settings().calibration_file or CALIBRATION_FILE
    # kinds not refitted keep their calibration (a new file starts from the shipped one)
    calibrations = load_calibrations(target if target.is_file() else CALIBRATION_FILE)
    dumps: dict[str, list[Path]] = {}
    open_dumps: dict[str, list[Path]] = {}
    for spec, into in [(s, dumps) for s in args.dumps] + [(s, open_dumps) for s in args.open_set]:
        kind, _, path = spec.partition("=")
        if kind not in KINDS or not path:
            parser.error(f"expected KIND=FILE with KIND in {KINDS}, got {spec!r}")
        into.setdefault(kind, []).append(Path(path))
    missing = [p for paths in (*dumps.values(), *open_dumps.values()) for p in paths]
    missing = [p for p in missing if not p.is_file()]
    if missing:
        parser.error(f"no dump {', '.join(map(str, missing))}")
    if set(open_dumps) - set(dumps):
        parser.error(f"--open-set for a kind with no dump to fit: {set(open_dumps) - set(dumps)}")
    for kind, paths in dumps.items():
        records = merge_dumps([json.loads(p.read_text())["records"] for p in paths])
        strangers = [
            r
            for p in open_dumps.get(kind, [])
            for r in json.loads(p.read_text())["records"]
            if r["true"] is None
        ]
        calibrations[kind] = fit_kind(
            kind, records, args.precision, strangers, args.max_open_set, args.bound_z
        )
    if args.save:
        save_calibrations(calibrations, target)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

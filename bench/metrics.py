"""Accuracy metrics over per-query records, shared by `bench.accuracy` and `bench.calibrate`.

A record is the JSON-able result of one query photo::

    {"path": str, "true": item_id | None, "group": str,
     "crops": [[{"item_id", "similarity", "inliers", "spread", "score", "verified"}, ...], ...]}

Calibration is judged on the answer a person acts on: each photo's top candidate (the best
score over all its crops), its score taken as the probability that it is the photo's item.
Open-set photos count too (their top candidate is always wrong); a photo without any
candidate is left out. ECE: those scores in 10 equal-width bins over [0, 1], the
count-weighted mean of |share correct - mean score| per bin.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def ranked_items(record: dict) -> list[str]:
    """The photo's items ranked by their best score over all its crops (ties: similarity)."""
    best: dict[str, tuple[float, float]] = {}
    for crop in record["crops"]:
        for cand in crop:
            key = (cand["score"], cand["similarity"])
            if key > best.get(cand["item_id"], (-1.0, -2.0)):
                best[cand["item_id"]] = key
    return sorted(best, key=lambda item: best[item], reverse=True)


def verified_items(record: dict) -> set[str]:
    """Items with a verified match on any crop of the photo."""
    return {c["item_id"] for crop in record["crops"] for c in crop if c["verified"]}


def summarize(records: list[dict], ks: tuple[int, ...] = (1, 5, 20)) -> dict[str, float]:
    """recall@K, confirm precision/recall, open-set false confirms, ECE, counts.

    recall@K: share of catalog-item queries whose true item is among the first K ranked items.
    confirm_precision: share of verified (photo, item) pairs that are the photo's true item.
    confirm_recall: share of catalog-item queries with a verified match to their true item.
    open_set_false_confirm: share of open-set photos with any verified match.
    ece: calibration error of the photos' top candidates (module docstring).
    """
    known = [r for r in records if r["true"] is not None]
    unknown = [r for r in records if r["true"] is None]
    out: dict[str, float] = {"queries": len(records), "known": len(known), "open": len(unknown)}
    for k in ks:
        hits = sum(r["true"] in ranked_items(r)[:k] for r in known)
        out[f"recall@{k}"] = hits / len(known) if known else float("nan")
    confirmed = correct = 0
    for r in records:
        items = verified_items(r)
        confirmed += len(items)
        correct += int(r["true"] in items)
    out["confirmed"] = confirmed
    out["confirm_precision"] = correct / confirmed if confirmed else float("nan")
    out["confirm_recall"] = (
        sum(r["true"] in verified_items(r) for r in known) / len(known) if known else float("nan")
    )
    out["open_set_false_confirm"] = (
        sum(bool(verified_items(r)) for r in unknown) / len(unknown) if unknown else float("nan")
    )
    out["ece"] = expected_calibration_error(*top_answers(records))
    return out


def by_group(records: list[dict]) -> dict[str, dict[str, float]]:
    """`summarize` per group (records of open-set photos carry group ``"_none"``)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r.get("group") or "-"].append(r)
    return {g: summarize(rs) for g, rs in sorted(groups.items())}


def top_answers(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Each photo's top candidate: its score float64 (P,) and whether it is right bool (P,)."""
    scores, right = [], []
    for r in records:
        best = max(
            (c for crop in r["crops"] for c in crop),
            key=lambda c: (c["score"], c["similarity"]),
            default=None,
        )
        if best is not None:
            scores.append(float(best["score"]))
            right.append(best["item_id"] == r["true"])
    return np.asarray(scores, dtype=np.float64), np.asarray(right, dtype=bool)


def reliability(scores: np.ndarray, right: np.ndarray, bins: int = 10) -> list[dict]:
    """Per equal-width bin of ``scores`` (P,) over [0, 1]: ``lo``, ``hi``, ``count``, mean
    ``confidence`` and ``accuracy`` (share of ``right`` (P,)); NaN for empty bins."""
    scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    right = np.asarray(right, dtype=np.float64)
    index = np.minimum((scores * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = index == b
        n = int(m.sum())
        out.append(
            {
                "lo": b / bins,
                "hi": (b + 1) / bins,
                "count": n,
                "confidence": float(scores[m].mean()) if n else float("nan"),
                "accuracy": float(right[m].mean()) if n else float("nan"),
            }
        )
    return out


def expected_calibration_error(scores: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """ECE of probabilities ``scores`` (P,) against outcomes ``right`` (P,); NaN when empty."""
    table = reliability(scores, right, bins)
    total = sum(b["count"] for b in table)
    if not total:
        return float("nan")
    return (
        sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in table if b["count"]) / total
    )


def ece_noise_floor(scores: np.ndarray, bins: int = 10, draws: int = 1000, seed: int = 0) -> float:
    """The ECE a perfectly calibrated score would measure on this sample: the mean ECE of
    outcomes drawn as Bernoulli(``scores``) (P,). On a few dozen photos it is far from 0, so
    an ECE near it cannot tell a calibrated score from a miscalibrated one."""
    scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    if not len(scores):
        return float("nan")
    rng = np.random.default_rng(seed)
    draws_ = rng.random((draws, len(scores))) < scores
    return float(np.mean([expected_calibration_error(scores, d, bins) for d in draws_]))


def final_line(m: dict[str, float]) -> str:
    """The benchmark's last line, in the exact format the issue asks for."""
    return (
        f"recall@1={m['recall@1']:.3f} recall@5={m['recall@5']:.3f} "
        f"confirm_precision={m['confirm_precision']:.3f} confirm_recall={m['confirm_recall']:.3f} "
        f"open_set_false_confirm={m['open_set_false_confirm']:.3f} queries={m['queries']}"
    )

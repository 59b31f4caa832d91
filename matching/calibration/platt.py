"""A pair record's top answer, the Platt fit on those answers, and the worst look-alikes
(`matching.calibration`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from matching.calibration.record import LOOK_ALIKES
from matching.score import Calibration, candidate_features


def _top(record: dict, base: Calibration) -> dict | None:
    """The record's top answer under ``base``: its candidate dict plus ``logit``."""
    best = None
    for crop in record["crops"]:
        if not crop:
            continue
        feats = candidate_features(
            np.array([c["similarity"] for c in crop]),
            np.array([c["inliers"] for c in crop]),
            np.array([c["spread"] for c in crop]),
            np.array([c.get("checked", True) for c in crop]),
        )
        z = base.logit(feats)
        i = int(np.argmax(z))
        if best is None or z[i] > best["logit"]:
            best = crop[i] | {"logit": float(z[i])}
    return best


def _platt(
    z: np.ndarray, y: np.ndarray, w: np.ndarray, max_scale: float, max_offset: float
) -> tuple[float, float]:
    """Weighted log-loss minimiser of ``sigmoid(a z + c)`` on a grid, bounded above."""
    best = (math.inf, 1.0, 0.0)
    scales = np.geomspace(0.02, max_scale, 60)
    offsets = np.linspace(-20.0, max_offset, 201)
    for a in scales:
        logits = a * z[:, None] + offsets[None, :]
        # log(1 + e^-x) for y=1, log(1 + e^x) for y=0, stable
        loss = np.where(y[:, None], np.logaddexp(0, -logits), np.logaddexp(0, logits))
        total = (w[:, None] * loss).sum(0)
        j = int(np.argmin(total))
        if total[j] < best[0]:
            best = (float(total[j]), float(a), float(offsets[j]))
    return best[1], best[2]


def _look_alikes(impostors: Sequence[tuple[dict, dict]], imp_scores: np.ndarray) -> list[dict]:
    """The worst look-alike pairs (one per pair of items), highest adjusted score first."""
    order = np.argsort(-imp_scores)
    looks: list[dict] = []
    pairs_seen: set[frozenset] = set()
    imp_list = [t for _, t in impostors]
    imp_recs = [r for r, _ in impostors]
    for i in order:
        pair = frozenset((imp_recs[i]["excluded"], imp_list[i]["item_id"]))
        if pair in pairs_seen:
            continue
        pairs_seen.add(pair)
        looks.append(
            {
                "item": imp_recs[i]["excluded"],
                "image": imp_recs[i]["path"],
                "looks_like": imp_list[i]["item_id"],
                "score": round(float(imp_scores[i]), 4),
                "similarity": round(float(imp_list[i]["similarity"]), 4),
                "inliers": int(imp_list[i]["inliers"]),
            }
        )
        if len(looks) == LOOK_ALIKES:
            break
    return looks

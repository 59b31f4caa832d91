"""A pair record's top answer, the Platt fit on those answers, and the worst look-alikes
(`matching.calibration`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from matching.calibration.pair_record import Candidate, PairRecord
from matching.calibration.record import LOOK_ALIKES
from matching.score import Calibration, candidate_features

#: The Platt fit's lower bounds: a scale that keeps some of the logit's order, an offset far
#: below any threshold.
MIN_SCALE = 0.02
MIN_OFFSET = -20.0
#: L-BFGS-B's stopping rule: far below the 6 decimals a calibration stores.
_TOLERANCE = {"ftol": 1e-12, "gtol": 1e-9}


def crop_features(crop: Sequence[Candidate]) -> np.ndarray:
    """float32 (C, F): `candidate_features` of one crop's candidates."""
    return candidate_features(
        np.array([c.similarity for c in crop]),
        np.array([c.inliers for c in crop]),
        np.array([c.spread for c in crop]),
        np.array([c.checked for c in crop]),
    )


def _top(record: PairRecord, base: Calibration) -> tuple[Candidate, float] | None:
    """The record's top answer under ``base``: its candidate and its logit."""
    best = None
    for crop in record.crops:
        if not crop:
            continue
        z = base.logit(crop_features(crop))
        i = int(np.argmax(z))
        if best is None or z[i] > best[1]:
            best = (crop[i], float(z[i]))
    return best


def _platt(
    z: np.ndarray, y: np.ndarray, w: np.ndarray, max_scale: float, max_offset: float
) -> tuple[float, float]:
    """Weighted log-loss minimiser of ``sigmoid(a z + c)``, ``a`` in [`MIN_SCALE`,
    ``max_scale``], ``c`` in [`MIN_OFFSET`, ``max_offset``] (`scipy.optimize.minimize`,
    L-BFGS-B: the loss is convex in ``(a, c)``, so its bounded minimum is the one found)."""
    z = np.asarray(z, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    # log(1 + e^-x) for y=1, log(1 + e^x) for y=0: log(1 + e^(sign x)), stable
    sign = np.where(np.asarray(y, dtype=bool), -1.0, 1.0)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        t = sign * (params[0] * z + params[1])
        dt = w * sign * expit(t)  # d loss / d (a z + c), per pair
        return float(w @ np.logaddexp(0.0, t)), np.array([dt @ z, dt.sum()])

    start = [min(1.0, max_scale), min(0.0, max_offset)]
    bounds = [(MIN_SCALE, max_scale), (MIN_OFFSET, max_offset)]
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options=_TOLERANCE)
    return float(found.x[0]), float(found.x[1])


def _look_alikes(
    impostors: Sequence[tuple[PairRecord, Candidate]], imp_scores: np.ndarray
) -> list[dict]:
    """The worst look-alike pairs (one per pair of items), highest adjusted score first."""
    order = np.argsort(-imp_scores)
    looks: list[dict] = []
    pairs_seen: set[frozenset] = set()
    imp_list = [t for _, t in impostors]
    imp_recs = [r for r, _ in impostors]
    for i in order:
        pair = frozenset((imp_recs[i].excluded, imp_list[i].item_id))
        if pair in pairs_seen:
            continue
        pairs_seen.add(pair)
        looks.append(
            {
                "item": imp_recs[i].excluded,
                "image": imp_recs[i].path,
                "looks_like": imp_list[i].item_id,
                "score": round(float(imp_scores[i]), 4),
                "similarity": round(float(imp_list[i].similarity), 4),
                "inliers": int(imp_list[i].inliers),
            }
        )
        if len(looks) == LOOK_ALIKES:
            break
    return looks

"""One score a person can trust: the fused, calibrated probability that a match is the same item.

The search gives a cosine similarity; keypoint verification gives inliers. Neither alone is a
probability, and each fails in its own way (look-alike dogs share many inliers; produce shares
high similarity across varieties). `Calibration` fuses them with a logistic model:

    score = sigmoid(w . features + b)          features: see `FEATURES`

fitted on labelled candidates from the dev sets (``python -m bench.calibrate``), and stored as
JSON beside this module (`calibration.json`). ``verified`` means ``score >= threshold``; the
threshold is chosen by the same command for a target confirmation precision and stored with it.
The score is monotone non-decreasing in similarity, margin and inliers (weights are constrained
to be >= 0), so more evidence never lowers it. One calibration is fitted per catalog kind
(``products``, ``animals``): keypoints are strong evidence for textured packages and weak for
aligned dog faces, and the fit learns that from the data rather than from a hand-set rule.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.kinds import KINDS

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
#: The highest score (float32 just below 1): a threshold of `NEVER` confirms nothing.
MAX_SCORE = 1.0 - 1e-6
NEVER = 1.0

#: Inputs of the fused score, in order. Each is computed per (crop, candidate item).
FEATURES: tuple[str, ...] = (
    "similarity",  # cosine similarity of the candidate's best catalog vector, in [-1, 1]
    "margin",  # similarity minus the best OTHER candidate's similarity (can be < 0)
    "log_inliers",  # log(1 + RANSAC inliers); 0 when not verified
    "inlier_margin",  # log(1 + inliers) minus the best other candidate's log(1 + inliers)
    "spread",  # share of the catalog image covered by the inliers, in [0, 1]
    "unchecked",  # 1 when keypoints were not run for this candidate (outside the shortlist)
)

#: Only the kinds with a trained model have a calibration fitted on dev photos; the others
#: (`core.kinds.KINDS`) start from `conservative_default` until their catalog's own
#: calibration exists.
TRAINED_KINDS = ("products", "animals")


@dataclass(frozen=True)
class Calibration:
    """Logistic fusion of match evidence into a probability, with its confirmation threshold."""

    weights: tuple[float, ...] = (12.0, 10.0, 0.6, 0.8, 1.0, 0.0)
    bias: float = -11.0
    threshold: float = 0.8  # ``verified`` when score >= threshold
    fitted_on: str = "hand-set defaults (not fitted)"
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(f"calibration needs {len(FEATURES)} weights, got {len(self.weights)}")

    def score(self, features: np.ndarray) -> np.ndarray:
        """Probability of "same item".

        Args:
            features: float32 (N, F) in the order of `FEATURES`.

        Returns:
            float32 (N,) in [0, 1].
        """
        z = features.astype(np.float64) @ np.asarray(self.weights) + self.bias
        # never exactly 1 (no evidence is certain): a threshold of 1 (`NEVER`) confirms nothing
        return np.minimum(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))), MAX_SCORE).astype(np.float32)

    def logit(self, features: np.ndarray) -> np.ndarray:
        """``w . features + b``, float64 (N,): the score before the sigmoid."""
        return features.astype(np.float64) @ np.asarray(self.weights) + self.bias

    def rescaled(self, scale: float, offset: float, threshold: float, **fields) -> Calibration:
        """This calibration with its logit mapped to ``scale * logit + offset`` (a Platt
        adjustment, folded into the weights: more evidence still never lowers the score when
        ``scale`` > 0) and another threshold."""
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        return Calibration(
            tuple(float(scale * w) for w in self.weights),
            float(scale * self.bias + offset),
            float(threshold),
            **fields,
        )

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        """Inverse of `to_dict`."""
        return cls(**(data | {"weights": tuple(data["weights"])}))


def conservative_default(kind: str) -> Calibration:
    """The calibration of a kind with none fitted (`TRAINED_KINDS` aside), until its catalog's
    own calibration exists (`matching.calibration`): the hand-set fusion, which ranks
    by the evidence but was fitted on nothing, so its score is no probability anyone measured,
    and a threshold of `NEVER`: nothing is confirmed on the word of a model that never saw the
    kind. Never another kind's calibration (the products fit confirms look-alike cars)."""
    return Calibration(
        threshold=NEVER,
        fitted_on=f"conservative default for {kind}: no calibration fitted for this kind; "
        "nothing is confirmed until the catalog's own calibration exists",
    )


def save_calibrations(calibrations: dict[str, Calibration], path: Path = CALIBRATION_FILE) -> None:
    """Write one calibration per catalog kind as JSON."""
    data = {"features": list(FEATURES)} | {k: c.to_dict() for k, c in calibrations.items()}
    path.write_text(json.dumps(data, indent=2) + "\n")


def load_calibrations(path: Path | None = None) -> dict[str, Calibration]:
    """The calibration of each kind (from ``path``, default `CALIBRATION_FILE`);
    `Calibration()` defaults for trained kinds not in the file, or when there is no file, and
    `conservative_default` for the other kinds not in the file.

    Raises:
        ValueError: the file was fitted for other features than `FEATURES`.
    """
    path = path or CALIBRATION_FILE
    data = json.loads(path.read_text()) if path.is_file() else {"features": list(FEATURES)}
    if tuple(data.pop("features", ())) != FEATURES:
        raise ValueError(f"{path} was fitted for other features than {FEATURES}")
    return {
        kind: Calibration.from_dict(data[kind])
        if kind in data
        else (Calibration() if kind in TRAINED_KINDS else conservative_default(kind))
        for kind in KINDS
    }


def candidate_features(
    similarity: np.ndarray,
    inliers: np.ndarray,
    spread: np.ndarray,
    checked: np.ndarray | None = None,
) -> np.ndarray:
    """Features of every candidate of one crop.

    Args:
        similarity: float32 (C,) cosine similarity per candidate item, best first or any order.
        inliers: int (C,) RANSAC inliers per candidate (0 where not verified).
        spread: float32 (C,) inlier coverage of the catalog image per candidate.
        checked: bool (C,) whether keypoints were run for the candidate (all, when None).

    Returns:
        float32 (C, F) in the order of `FEATURES`.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    log_in = np.log1p(np.asarray(inliers, dtype=np.float64))
    out = np.zeros((len(sim), len(FEATURES)), dtype=np.float32)
    if len(sim) == 0:
        return out
    out[:, 0] = sim
    out[:, 1] = sim - _best_other(sim)
    out[:, 2] = log_in
    out[:, 3] = log_in - _best_other(log_in)
    out[:, 4] = np.asarray(spread, dtype=np.float64)
    if checked is not None:
        out[:, 5] = ~np.asarray(checked, dtype=bool)
    return out


def _best_other(values: np.ndarray) -> np.ndarray:
    """For each entry, the largest value among the OTHER entries (0 when there is none)."""
    if len(values) < 2:
        return np.zeros_like(values)
    order = np.argsort(-values)
    best, second = values[order[0]], values[order[1]]
    out = np.full_like(values, best)
    out[order[0]] = second
    return out


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1e-2, iterations: int = 500
) -> tuple[np.ndarray, float]:
    """Fit ``sigmoid(x @ w + b)`` to binary labels with non-negative weights.

    The mean log-loss plus ``l2 / 2 * |w|^2`` on standardised features, minimised with the
    weights bounded at 0 (`scipy.optimize.minimize`, L-BFGS-B, at most ``iterations``
    iterations; the loss is convex, so the bounded minimum is the one found). scikit-learn's
    `LogisticRegression` has no sign constraint: more evidence must never lower the score.

    Args:
        x: float (N, F) features; y: (N,) labels in {0, 1}.

    Returns:
        ``(weights (F,), bias)``.
    """
    # scipy costs a second at import (more on a busy machine); every service process reads
    # this module, and only the offline fit (`bench.calibrate`) needs it
    from scipy.optimize import minimize
    from scipy.special import expit

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / std
    f = x.shape[1]

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:f], params[f]
        t = xs @ w + b
        p = expit(t)
        value = float(np.mean(np.logaddexp(0.0, t) - y * t)) + 0.5 * l2 * float(w @ w)
        return value, np.append(xs.T @ (p - y) / len(y) + l2 * w, np.mean(p - y))

    start = np.append(np.zeros(f), math.log((y.mean() + 1e-6) / (1 - y.mean() + 1e-6)))
    # keep the score monotone in the evidence: weights in the original units stay >= 0
    bounds = [(0.0, None)] * f + [(None, None)]
    options = {"maxiter": iterations, "ftol": 1e-12, "gtol": 1e-9}
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    w, b = found.x[:f], float(found.x[f])
    weights = w / std
    bias = b - float(np.sum(w * mean / std))
    return weights, bias

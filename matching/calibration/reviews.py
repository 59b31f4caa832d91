"""The fit once people reviewed enough sightings (`matching.calibration`): refitted on what
people reviewed, never worse than before.

The calibration a catalog has before anyone reviews (its kind's, adjusted on the catalog's own
pairs, `matching.calibration.fit`) is the *prior*: on a kind the models never learned its
scores are a guess (the catalog's own pairs are augmented views, easier than a real photo).
Each reviewed sighting is a real query photo of the catalog with its answer known, and its
candidates are labelled pairs: the confirmed item's candidate genuine, every other one (all of a
``none``) an impostor.

The refit chooses, by cross-validation on the reviewed sightings, between models of growing
freedom, each fitted on the sightings' top answers under the prior (`top_rows`):

* ``prior``: the calibration before the reviews, unchanged;
* ``platt``: its logit rescaled, ``sigmoid(a * logit + c)`` (two numbers);
* ``refit(λ)``: every fusion weight free, pulled towards the Platt-adjusted prior by an L2
  penalty ``λ``; the evidence weights (similarity, inliers, coverage and their margins) stay
  >= 0, so more evidence never lowers a score.

A model is judged as a person meets it: by the log-loss of each held-out sighting's top answer
(right when it is the confirmed item; a ``none`` is always wrong), over ``folds`` seeded folds.
A freer model replaces the simpler one only where its held-out loss is lower by more than one
standard error of the paired per-sighting differences (`choose_model`), so a handful of reviews
changes nothing it cannot defend on photos it did not see. That is the guard the first refit
lacked: fitted on 25 reviews plus the catalog's own pairs, grocery as ``other`` went from ECE
0.228 to 0.337; choosing by the lowest held-out loss alone, 50 reviews still took it from 0.096
to 0.149 (`bench.review`, docs/review.md).

The threshold is then read off the chosen model's *held-out* top-answer scores: the lowest (never
below ``floor``) at which the Wilson bound (``bound_z``) of the wrong share among the confirmed
ones is <= ``max_false_confirm``. Where none qualifies, the reviews cannot justify more
confirmations than the prior made, so the threshold confirms no more of the held-out sightings
than the prior's threshold did under the prior (never below it): the prior's threshold read
on another model's scores is no bound at all (dogs through the ``products`` model, 25 reviews:
a refit scored higher, and the prior's 0.89 confirmed 74 of 250 unseen photos, 6 wrong, where
the prior confirmed 14). Nothing is confirmed (`NEVER`) where the reviews show that the prior's
threshold confirms wrong answers (the Wilson *lower* bound of its wrong share above
``max_false_confirm``), until more reviews say where.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from core.stats import wilson_interval
from matching.calibration.pair_record import PairRecord
from matching.calibration.platt import crop_features
from matching.calibration.record import UNTRAINED_FLOOR, CatalogCalibration, FitOptions
from matching.score import FEATURES, NEVER, TRAINED_KINDS, Calibration

#: Features whose weight must stay >= 0 (more evidence never lowers a score): all but the
#: "keypoints not run" flag.
EVIDENCE = tuple(i for i, name in enumerate(FEATURES) if name != "unchecked")
#: The L2 penalties tried for the free refit, strongest first.
PENALTIES = (30.0, 3.0)


@dataclass(frozen=True)
class ReviewedCandidates:
    """The reviewed sightings' candidates as arrays.

    Attributes:
        features: float32 (R, F) every candidate of every crop (`candidate_features`).
        genuine: bool (R,) the candidate is the item a person confirmed.
        sighting: int (R,) which sighting (record) it belongs to.
        count: sightings.
    """

    features: np.ndarray
    genuine: np.ndarray
    sighting: np.ndarray
    count: int


@dataclass(frozen=True)
class ReviewFit:
    """The chosen calibration and how it was chosen.

    Attributes:
        weights, bias, threshold: the catalog's calibration now.
        model: ``prior``, ``platt`` or ``refit(λ=..)``.
        cv_log_loss: held-out top-answer log-loss of every model tried.
        held_out: the chosen model's held-out top-answer figures at its threshold.
    """

    weights: tuple[float, ...]
    bias: float
    threshold: float
    model: str
    cv_log_loss: dict[str, float] = field(default_factory=dict)
    held_out: dict = field(default_factory=dict)


def candidate_rows(records: Sequence[PairRecord]) -> ReviewedCandidates:
    """Every candidate of the review records (`sightings.pairs`) as `ReviewedCandidates`."""
    feats, genuine, owner = [], [], []
    for i, r in enumerate(records):
        for crop in r.crops:
            if not crop:
                continue
            feats.append(crop_features(crop))
            genuine += [r.true is not None and c.item_id == r.true for c in crop]
            owner += [i] * len(crop)
    width = len(FEATURES)
    return ReviewedCandidates(
        np.concatenate(feats) if feats else np.zeros((0, width), np.float32),
        np.array(genuine, dtype=bool),
        np.array(owner, dtype=np.int64),
        len(records),
    )


def top_answers(data: ReviewedCandidates, theta: np.ndarray, which: np.ndarray) -> tuple:
    """(score, right) of the top answer of each sighting in ``which`` under ``theta``
    (weights then bias): the candidate a person is shown first."""
    z = data.features.astype(np.float64) @ theta[:-1] + theta[-1]
    best = top_rows(data, theta) & np.isin(data.sighting, which)  # rows in sighting order
    return expit(z[best]), data.genuine[best].copy()


def _losses(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-answer log-loss."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -np.where(y, np.log(p), np.log1p(-p))


def choose_model(losses: dict[str, np.ndarray], z: float) -> str:
    """The model to use, from the held-out per-sighting losses of each (in order of growing
    freedom, the prior first): a freer model replaces the current choice only where its mean
    loss is lower by more than ``z`` standard errors of the paired differences (one model
    winning by the sample's luck is what made 50 reviews worsen grocery-as-other)."""
    names = list(losses)
    chosen = names[0]
    for name in names[1:]:
        diff = losses[chosen] - losses[name]
        if len(diff) < 2:
            continue
        se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
        if diff.mean() > z * se:
            chosen = name
    return chosen


def top_rows(data: ReviewedCandidates, theta: np.ndarray) -> np.ndarray:
    """bool (R,): each sighting's top candidate under ``theta``, the fits' rows (the answer
    a person acts on: fitted on every candidate instead, the scores of the top answers came
    out overconfident, dogs as ``wildlife`` ECE 0.33 after 100 reviews)."""
    z = data.features.astype(np.float64) @ theta[:-1] + theta[-1]
    order = np.lexsort((-z, data.sighting))
    first = np.r_[True, data.sighting[order][1:] != data.sighting[order][:-1]]
    mask = np.zeros(len(z), dtype=bool)
    mask[order[first]] = True
    return mask


def fit_platt(data: ReviewedCandidates, prior: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The prior's logit rescaled, ``a * logit + c`` (``a`` in [0.02, 4]), by log-loss on the
    candidates ``rows`` (bool (R,))."""
    x = data.features[rows].astype(np.float64) @ prior[:-1] + prior[-1]
    y = data.genuine[rows]
    if not len(x) or y.all() or not y.any():
        return prior

    def loss(v):
        z = v[0] * x + v[1]
        return -np.sum(np.where(y, log_expit(z), log_expit(-z)))

    res = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B", bounds=[(0.02, 4.0), (-30, 30)])
    a, c = res.x
    return np.concatenate([a * prior[:-1], [a * prior[-1] + c]])


def fit_penalised(
    data: ReviewedCandidates, centre: np.ndarray, rows: np.ndarray, penalty: float
) -> np.ndarray:
    """Every weight free, pulled to ``centre`` by ``penalty * |w - centre_w|^2`` (bias free);
    evidence weights >= 0; on the candidates ``rows`` (bool (R,))."""
    x = data.features[rows].astype(np.float64)
    y = data.genuine[rows]
    if not len(x) or y.all() or not y.any():
        return centre
    xb = np.hstack([x, np.ones((len(x), 1))])
    sign = np.where(y, 1.0, -1.0)

    def loss(theta):
        z = xb @ theta
        dev = theta[:-1] - centre[:-1]
        value = -np.sum(log_expit(sign * z)) + penalty * float(dev @ dev)
        grad = -(xb.T @ (sign * expit(-sign * z)))
        grad[:-1] += 2 * penalty * dev
        return value, grad

    lower = np.array([0.0 if i in EVIDENCE else -np.inf for i in range(len(FEATURES))])
    bounds = [(0.0, None) if i in EVIDENCE else (None, None) for i in range(len(FEATURES))]
    start = np.concatenate([np.maximum(centre[:-1], lower), centre[-1:]])
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[*bounds, (None, None)])
    return res.x


def choose_threshold(
    scores: np.ndarray,
    right: np.ndarray,
    floor: float,
    prior_threshold: float,
    max_false_confirm: float,
    bound_z: float,
    prior_scores: np.ndarray | None = None,
) -> float:
    """The threshold from held-out top answers (module docstring).

    Args:
        scores, right: the chosen model's held-out top answers: score, and whether right.
        prior_scores: the prior's scores of the same held-out top answers (None: the chosen
            model is the prior).
    """
    grid = np.round(np.arange(0.3, 0.995, 0.01), 2)
    for t in grid:
        if t < floor - 1e-9:
            continue
        confirmed = scores >= t
        if not confirmed.any():
            break
        wrong = int((confirmed & ~right).sum())
        if wilson_interval(wrong, int(confirmed.sum()), bound_z)[1] <= max_false_confirm:
            return float(t)
    if prior_threshold >= NEVER:
        return NEVER
    threshold = float(max(prior_threshold, floor))
    if prior_scores is not None:  # no more confirmations than the prior made
        allowed = int((prior_scores >= prior_threshold).sum())
        ranked = np.sort(scores)[::-1]
        if allowed == 0:
            return NEVER
        if allowed < len(ranked):  # just above the first answer the prior did not confirm
            threshold = max(threshold, float(np.nextafter(ranked[allowed], np.inf)))
        if threshold >= NEVER:
            return NEVER
    confirmed = scores >= threshold
    wrong = int((confirmed & ~right).sum())
    shown_wrong = wilson_interval(wrong, int(confirmed.sum()), bound_z)[0] > max_false_confirm
    if confirmed.any() and shown_wrong:
        return NEVER
    return threshold


def fit_on_reviews(
    records: Sequence[PairRecord],
    prior: Calibration,
    floor: float,
    max_false_confirm: float = 0.05,
    bound_z: float = 1.0,
    folds: int = 5,
    seed: int = 0,
    select_z: float = 1.0,
) -> ReviewFit:
    """Choose and fit the catalog's calibration on its review records (module docstring).

    Args:
        records: reviewed sightings in `sightings.pairs`' shape (``true`` None for ``none``).
        prior: the calibration the catalog had without reviews.
        floor: the lowest threshold allowed (the kind's, or `UNTRAINED_FLOOR`).
    """
    data = candidate_rows(records)
    theta0 = np.array([*prior.weights, prior.bias], dtype=np.float64)
    n = data.count
    everyone = np.arange(n)
    k = max(2, min(folds, n))
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % k

    pool = top_rows(data, theta0)

    def fits(train: np.ndarray) -> dict[str, np.ndarray]:
        """Every model fitted on the ``train`` sightings (the Platt fit shared)."""
        rows = np.isin(data.sighting, train) & pool
        platt = fit_platt(data, theta0, rows)
        out = {"prior": theta0, "platt": platt}
        for lam in PENALTIES:
            out[f"refit(λ={lam:g})"] = fit_penalised(data, platt, rows, lam)
        return out

    held: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for f in range(k):
        test = everyone[fold_of == f]
        for name, theta in fits(everyone[fold_of != f]).items():
            held.setdefault(name, []).append(top_answers(data, theta, test))
    cv: dict[str, float] = {}
    losses: dict[str, np.ndarray] = {}
    for name, parts in held.items():
        scores = np.concatenate([s for s, _ in parts])
        right = np.concatenate([r for _, r in parts])
        held[name] = [(scores, right)]
        losses[name] = _losses(scores, right)
        cv[name] = round(float(losses[name].mean()), 5) if len(scores) else math.inf
    best = choose_model(losses, select_z)
    theta = fits(everyone)[best]
    scores, right = held[best][0]
    prior_scores = None if best == "prior" else held["prior"][0][0]
    threshold = choose_threshold(
        scores, right, floor, prior.threshold, max_false_confirm, bound_z, prior_scores
    )
    confirmed = scores >= threshold
    held_out = {
        "sightings": int(len(scores)),
        "top1": round(float(right.mean()), 4) if len(right) else 0.0,
        "confirmed": int(confirmed.sum()),
        "wrong_confirmed": int((confirmed & ~right).sum()),
        "mean_score": round(float(scores.mean()), 4) if len(scores) else 0.0,
    }
    return ReviewFit(
        tuple(float(w) for w in theta[:-1]),
        float(theta[-1]),
        float(threshold),
        best,
        cv,
        held_out,
    )


def review_pair_counts(reviewed: Sequence[PairRecord]) -> tuple[int, int]:
    """(genuine, impostor) pairs of reviewed-sighting records: the candidate of the
    confirmed item is genuine, every other candidate (all of a ``none``) an impostor."""
    genuine = impostors = 0
    for r in reviewed:
        for crop in r.crops:
            for cand in crop:
                if r.true is not None and cand.item_id == r.true:
                    genuine += 1
                else:
                    impostors += 1
    return genuine, impostors


def _fit_with_reviews(
    prior_fit: CatalogCalibration,
    reviewed: Sequence[PairRecord],
    base: Calibration,
    kind: str,
    options: FitOptions,
    common: dict,
) -> CatalogCalibration:
    """The catalog's calibration once people reviewed enough sightings: ``prior_fit`` (its
    own pairs' fit) moved only as far as cross-validation on the reviewed sightings says
    (`fit_on_reviews`), its threshold from their held-out answers (never below the kind's, or
    `UNTRAINED_FLOOR`)."""
    prior = prior_fit.apply(base) if prior_fit.status == "fitted" else base
    floor = base.threshold if kind in TRAINED_KINDS else UNTRAINED_FLOOR
    rev = [r for r in reviewed if any(r.crops)]
    fit = fit_on_reviews(
        rev,
        prior,
        floor,
        max_false_confirm=options.max_false_confirm,
        bound_z=options.bound_z,
        seed=options.seed,
    )
    genuine_r, impostors_r = review_pair_counts(rev)
    metrics = {
        "model": fit.model,
        "cv_log_loss": fit.cv_log_loss,
        "held_out": fit.held_out,
        "reviewed_open": sum(r.true is None for r in rev),
        "max_false_confirm": options.max_false_confirm,
        "bound_z": options.bound_z,
        "own_pairs": dict(prior_fit.metrics),
    }
    return replace(
        prior_fit,
        status="fitted",
        weights=fit.weights,
        bias=fit.bias,
        threshold=fit.threshold,
        metrics=metrics,
        reason="",
        reviewed_sightings=len(rev),
        reviewed_genuine=genuine_r,
        reviewed_impostors=impostors_r,
        reviews_digest=common["reviews_digest"],
        fitted_at=common["fitted_at"],
    )

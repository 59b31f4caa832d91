"""The fused score: a probability in [0, 1], monotone in the evidence, and fitted honestly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from matching.score import (
    FEATURES,
    KINDS,
    NEVER,
    TRAINED_KINDS,
    Calibration,
    candidate_features,
    conservative_default,
    fit_logistic,
    load_calibrations,
    save_calibrations,
)

SHIPPED = load_calibrations()


@pytest.mark.parametrize(
    "cal", [Calibration(), *SHIPPED.values()], ids=["defaults", *(f"shipped-{k}" for k in SHIPPED)]
)
def test_score_is_a_probability_and_monotone(cal: Calibration) -> None:
    rng = np.random.default_rng(0)
    feats = np.column_stack(
        [
            rng.uniform(-1, 1, 500),
            rng.uniform(-1, 1, 500),
            rng.uniform(0, 6, 500),
            rng.uniform(-6, 6, 500),
            rng.uniform(0, 1, 500),
            rng.integers(0, 2, 500),  # unchecked flag
        ]
    ).astype(np.float32)
    scores = cal.score(feats)
    assert scores.dtype == np.float32 and scores.shape == (500,)
    assert ((scores >= 0) & (scores <= 1)).all()
    for column in range(len(FEATURES) - 1):  # more evidence never lowers the score
        more = feats.copy()
        more[:, column] += 0.5
        assert (cal.score(more) >= scores - 1e-6).all(), FEATURES[column]


def test_candidate_features_margins() -> None:
    f = candidate_features(np.array([0.9, 0.7, 0.5]), np.array([50, 0, 10]), np.zeros(3))
    np.testing.assert_allclose(f[:, 1], [0.2, -0.2, -0.4], atol=1e-6)  # vs best other
    assert f[0, 3] > 0 > f[2, 3]  # inlier margin
    assert candidate_features(np.zeros(0), np.zeros(0), np.zeros(0)).shape == (0, len(FEATURES))
    single = candidate_features(np.array([0.8]), np.array([12]), np.array([0.3]))
    assert single[0, 1] == pytest.approx(0.8) and single[0, 3] == pytest.approx(np.log1p(12))


def test_fit_recovers_a_relation_and_keeps_weights_non_negative() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, len(FEATURES)))
    true_w = np.array([3.0, 0.0, 2.0, 0.0, 1.0, 0.0])
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x @ true_w - 1)))).astype(float)
    w, b = fit_logistic(x, y)
    assert (w >= 0).all()
    assert w[0] > w[4] > w[1] and w[2] > w[3]
    acc = ((1 / (1 + np.exp(-(x @ w + b))) > 0.5) == y).mean()
    assert acc > 0.75


def test_fit_is_the_regularised_logistic_regression_where_no_weight_is_held_at_zero() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    y = (rng.random(3000) < 1 / (1 + np.exp(-(x @ [1.5, 0.5, 2.0] - 0.3)))).astype(float)
    w, b = fit_logistic(x, y, l2=1e-2)
    # the same objective: mean log-loss + l2/2 |w|^2 on standardised features
    mean, std = x.mean(0), x.std(0) + 1e-6
    ref = LogisticRegression(C=1 / (1e-2 * len(y)), tol=1e-10, max_iter=10_000)
    ref.fit((x - mean) / std, y)
    assert (ref.coef_ > 0).all()
    np.testing.assert_allclose(w, ref.coef_[0] / std, atol=1e-4)
    assert b == pytest.approx(
        ref.intercept_[0] - float(np.sum(ref.coef_[0] * mean / std)), abs=1e-4
    )


def test_fit_holds_a_weight_at_zero_only_where_the_loss_pushes_it_below() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 2))
    y = (rng.random(3000) < 1 / (1 + np.exp(-(x @ [2.0, -1.5])))).astype(float)
    w, b = fit_logistic(x, y)
    assert w[0] > 1.0 and w[1] == 0.0
    # at the bound the loss still falls towards negative weights: its slope there is > 0
    p = 1 / (1 + np.exp(-(x @ w + b)))
    xs = (x - x.mean(0)) / (x.std(0) + 1e-6)
    assert float(xs[:, 1] @ (p - y)) / len(y) > 0.05


def test_calibrations_round_trip_per_kind(tmp_path: Path) -> None:
    cal = Calibration((1.0, 2.0, 3.0, 4.0, 5.0, 0.5), -2.0, 0.7, fitted_on="test")
    save_calibrations({"products": cal}, tmp_path / "c.json")
    loaded = load_calibrations(tmp_path / "c.json")
    assert set(loaded) == set(KINDS)
    assert loaded["products"] == cal and loaded["animals"] == Calibration()
    assert load_calibrations(tmp_path / "absent.json")["animals"] == Calibration()
    with pytest.raises(ValueError):
        Calibration((1.0,), 0.0)


def test_unchecked_candidates_are_marked() -> None:
    f = candidate_features(
        np.array([0.9, 0.8]), np.array([30, 0]), np.zeros(2), np.array([True, False])
    )
    assert f[:, FEATURES.index("unchecked")].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("kind", TRAINED_KINDS)
def test_shipped_calibration_holds_its_targets_on_photos_it_did_not_see(kind: str) -> None:
    """The cross-validated figures `bench.calibrate --save` stored with each kind's fit: a refit
    whose threshold confirms too loosely on held-out photos must not ship unnoticed."""
    cal = SHIPPED[kind]
    cv = cal.metrics["cross_validated"]
    assert cv["queries"] >= 500  # a few hundred photos, or the figures below are noise
    assert cv["confirm_precision"] >= 0.97
    assert cv["strangers_false_confirm"] <= 0.03 and cv["strangers"] >= 400
    assert cv["ece"] <= 0.05


def test_a_kind_without_a_fit_gets_the_conservative_default_never_products() -> None:
    for kind in set(KINDS) - set(TRAINED_KINDS):
        assert SHIPPED[kind] == conservative_default(kind) != SHIPPED["products"]
        assert SHIPPED[kind].threshold == NEVER
    saturated = np.full((1, len(FEATURES)), 100.0, dtype=np.float32)
    assert Calibration().score(saturated)[0] < NEVER  # a threshold of 1 confirms nothing


def test_rescaled_folds_a_platt_adjustment() -> None:
    cal = SHIPPED["products"]
    feats = np.random.default_rng(2).uniform(0, 1, (50, len(FEATURES))).astype(np.float32)
    adjusted = cal.rescaled(0.5, -1.0, 0.95)
    want = 1 / (1 + np.exp(-(0.5 * cal.logit(feats) - 1.0)))
    np.testing.assert_allclose(adjusted.score(feats), want, rtol=1e-5)
    assert adjusted.threshold == 0.95
    with pytest.raises(ValueError):
        cal.rescaled(0.0, 0.0, 0.5)

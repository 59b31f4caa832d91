"""The Platt fit of a catalog's calibration: the bounded weighted log-loss minimum."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from matching.calibration.platt import MIN_OFFSET, MIN_SCALE, _platt


def _loss(a: float, c: float, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    x = a * z + c
    return float((w * np.where(y, np.logaddexp(0, -x), np.logaddexp(0, x))).sum())


def _pairs(rng: np.random.Generator, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = rng.normal(0.5, 2.0, n)
    y = rng.random(n) < 1 / (1 + np.exp(-(0.6 * z - 0.8)))
    w = rng.uniform(0.5, 2.0, n)
    return z, y, w / w.sum()


def test_an_optimum_inside_the_bounds_is_weighted_logistic_regression() -> None:
    z, y, w = _pairs(np.random.default_rng(3))
    a, c = _platt(z, y, w, 4.0, 5.0)
    ref = LogisticRegression(C=1e12, tol=1e-10, max_iter=10_000).fit(z[:, None], y, w)
    assert a == pytest.approx(ref.coef_[0, 0], abs=1e-4)
    assert c == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert 0.4 < a < 0.8 and -1.1 < c < -0.5  # near what the labels were drawn from


def test_a_bounded_fit_stays_inside_and_beats_every_feasible_point_of_a_grid() -> None:
    z, y, w = _pairs(np.random.default_rng(4))
    y = y | (z > 0)  # the data want an offset above 0 and a scale above 0.6
    a, c = _platt(z, y, w, 1.0, 0.0)
    assert MIN_SCALE <= a <= 1.0 and MIN_OFFSET <= c <= 0.0
    assert c == 0.0  # pressed against its bound
    best = _loss(a, c, z, y, w)
    grid = [
        _loss(s, o, z, y, w)
        for s in np.geomspace(MIN_SCALE, 1.0, 60)
        for o in np.linspace(MIN_OFFSET, 0.0, 201)
    ]
    assert best <= min(grid) + 1e-12


def test_separable_pairs_end_at_the_largest_scale_allowed() -> None:
    z = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    y = z > 0
    a, c = _platt(z, y, np.full(6, 1 / 6), 4.0, 5.0)
    assert a == pytest.approx(4.0) and abs(c) < 1e-3

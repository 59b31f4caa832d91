"""How k is chosen (``readable``, ``coarse``) and how k-means starts from the Ward tree, on
seeded synthetic blobs whose count and shape are known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from analytics.data import Descriptors
from analytics.pipeline import AnalyticsConfig, run
from analytics.steps.cluster import (
    WardTree,
    kmeans,
    no_cluster_reference,
    readable_floor,
    readable_grid,
)


def blobs(count: int, per: int, dims: int, spread: float, seed: int = 0):
    """``count`` Gaussian blobs of ``per`` points around random centres (norm about 3)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3 / np.sqrt(dims), (count, dims))
    truth = np.repeat(np.arange(count), per)
    x = centres[truth] + rng.normal(0, spread / np.sqrt(dims), (count * per, dims))
    return x.astype(np.float32), truth


def shading(groups: int, n: int, dims: int, spread: float, seed: int = 0):
    """``groups`` groups along a smooth closed curve, each overlapping its neighbours (the
    way body types of cars shade into each other), rows scaled to unit length."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, groups, endpoint=False)
    phases = rng.uniform(0, 2 * np.pi, 8)
    curve = np.stack([np.cos(2 * np.pi * f * t + p) for f, p in enumerate(phases, 1)], 1)
    centres = curve @ rng.normal(0, 1, (8, dims))
    step = np.linalg.norm(centres[1] - centres[0])
    truth = rng.integers(0, groups, n)
    x = centres[truth] + rng.normal(0, spread * step / np.sqrt(dims), (n, dims))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def test_well_separated_blobs_give_their_count() -> None:
    x, truth = blobs(30, 20, 32, 0.3)
    result = kmeans(x)
    assert result.k == 30 > readable_floor(600) == 13
    assert normalized_mutual_info_score(truth, result.labels) > 0.99
    assert result.chosen_by.startswith("readable")


@pytest.mark.parametrize("spread", [2.0, 2.5])
def test_groups_that_shade_into_each_other_are_not_cut_in_two(spread: float) -> None:
    """11 groups along a curve: the silhouette over the whole grid says 2 (or, noisier, the
    near-singletons at the top); the readable choice gives readable clusters, not the top
    of its range: between the floor and a few times the true count."""
    x, truth = shading(11, 880, 64, spread)
    whole_grid = kmeans(x, choose_by="silhouette", max_k=50).k
    assert whole_grid == 2
    result = kmeans(x)
    assert readable_floor(880) == 15 <= result.k <= 44, result.scores
    assert result.k < max(result.scores) // 4
    assert normalized_mutual_info_score(truth, result.labels) > 0.2


def test_noise_alone_gives_the_floor() -> None:
    """No clusters at all (one Gaussian): no k stands out of the references' noise."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (500, 48)).astype(np.float32)
    result = kmeans(x)
    assert result.k == readable_floor(500) == 12
    assert result.others == ()


def test_coarse_takes_the_first_peak() -> None:
    """Six far-apart groups of five tight clusters each (n = 300, floor 9): ``readable``
    finds the 30 clusters, ``coarse`` stops at the first peak that stands out; the finer
    reading is offered to each as another k."""
    rng = np.random.default_rng(2)
    groups = rng.normal(0, 10, (6, 24))
    sub = groups.repeat(5, axis=0) + rng.normal(0, 1.5, (30, 24))
    truth = np.repeat(np.arange(30), 10)
    x = (sub[truth] + rng.normal(0, 0.1, (300, 24))).astype(np.float32)
    fine = kmeans(x)
    coarse = kmeans(x, choose_by="coarse")
    assert fine.k == 30
    assert adjusted_rand_score(truth, fine.labels) > 0.99
    assert readable_floor(300) <= coarse.k < fine.k
    assert 30 in coarse.others or any(abs(k - 30) <= 3 for k in coarse.others), coarse.others


def test_a_given_k_starts_from_the_ward_tree() -> None:
    """At a given k the centres start from the Ward tree's cut: on blobs of unequal sizes,
    where k-means++ from one seeding may split a big blob and merge two small ones, the
    result is the blobs."""
    x, truth = blobs(12, 25, 16, 0.2, seed=3)
    x = np.concatenate([x, x[truth == 0] + 0.01])  # one blob twice as big
    truth = np.concatenate([truth, np.zeros((truth == 0).sum(), int)])
    result = kmeans(x, 12)
    assert result.k == 12 and result.scores == {} and result.chosen_by == "given"
    assert adjusted_rand_score(truth, result.labels) > 0.99


def test_ward_cuts_are_exact_and_nested() -> None:
    x, _ = blobs(5, 8, 6, 0.5, seed=4)
    tree = WardTree(x)
    cuts = tree.cuts([1, 2, 5, 17, 40])
    assert sorted(cuts) == [1, 2, 5, 17, 40]
    for k, labels in cuts.items():
        assert sorted(set(labels.tolist())) == list(range(k))
    for fine, coarse in ((40, 17), (17, 5), (5, 2)):  # each cluster lies inside one coarser
        pairs = set(zip(cuts[fine].tolist(), cuts[coarse].tolist(), strict=True))
        assert len(pairs) == fine
    centres = tree.centres(5)
    assert centres.shape == (5, 6)
    assert np.allclose(centres[cuts[5][0]], x[cuts[5] == cuts[5][0]].mean(axis=0), atol=1e-5)


def test_the_reference_has_the_spread_without_the_clusters() -> None:
    x, _ = blobs(8, 40, 12, 0.2, seed=5)
    ref = no_cluster_reference(x)
    assert ref.shape == x.shape and ref.dtype == np.float32
    assert np.allclose(ref.mean(axis=0), x.mean(axis=0), atol=0.15)
    assert np.isclose(ref.var(axis=0).sum(), x.var(axis=0).sum(), rtol=0.1)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.allclose(np.linalg.norm(no_cluster_reference(unit), axis=1), 1.0, atol=1e-5)


def test_grid_and_the_run_report_how_k_was_chosen() -> None:
    grid = readable_grid(13, 480)
    assert grid[0] == 13 and grid[-1] == 480
    assert all(1.0 < b / a <= 1.2 for a, b in zip(grid, grid[1:], strict=False))
    x, truth = blobs(30, 20, 32, 0.3)
    data = Descriptors([f"{i}.jpg" for i in range(len(x))], x)
    result = run(data, AnalyticsConfig(map_method="pca"))
    m = result.metrics
    assert m["clusters"] == 30 and m["k_chosen_by"].startswith("readable")
    assert set(m["k_scores"]) >= {"13", "30"}
    assert run(data, AnalyticsConfig(k=7, map_method="pca")).metrics["k_chosen_by"] == "given"

"""Each step on real embeddings of shelf photos, and the bad inputs of a run."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.data import Descriptors
from analytics.pipeline import AnalyticsConfig, run
from analytics.steps.cluster import kmeans
from analytics.steps.scale import scale
from core.errors import BadInput

FAST = AnalyticsConfig(map_sample=200, max_k=8)


def test_kmeans_on_real_photos_finds_the_items(grocery: Descriptors) -> None:
    truth = {p: it for p, it in zip(grocery.paths, grocery.items, strict=True)}
    result = run(grocery, AnalyticsConfig(k=4, map_sample=200), truth)
    assert result.metrics["clusters"] == 4 and len(set(result.cluster.tolist())) == 4
    assert result.metrics["nmi"] > 0.6, result.metrics  # 4 products, 8 shelf photos each
    assert {"ch", "db", "silhouette", "ari"} <= set(result.metrics)
    assert result.xy.shape == (len(grocery), 2) and 0 <= result.xy.min() <= result.xy.max() <= 1


def test_k_is_chosen_on_a_sample(grocery: Descriptors) -> None:
    result = run(grocery, FAST)
    scores = result.metrics["k_scores"]
    assert result.metrics["clusters"] == int(max(scores, key=scores.get))


def test_hdbscan_gives_clusters_or_noise(grocery: Descriptors) -> None:
    result = run(grocery, AnalyticsConfig(method="hdbscan", map_method="pca"))
    assert set(result.cluster.tolist()) <= set(range(-1, result.metrics["clusters"]))
    assert result.metrics["noise"] == int((result.cluster == -1).sum())


# IsolationForest is left out: it splits on single coordinates, and a random direction has
# only small ones, so it scores this odd vector as ordinary (measured: README, outliers)
@pytest.mark.parametrize("method", ["knn", "centre", "lof"])
def test_a_planted_odd_vector_is_the_top_outlier(grocery: Descriptors, method: str) -> None:
    rng = np.random.default_rng(1)
    odd = rng.normal(size=(1, grocery.dim)).astype(np.float32)
    data = Descriptors(grocery.paths + ["odd.jpg"], np.r_[grocery.vectors, odd], None)
    result = run(data, AnalyticsConfig(k=4, outlier_method=method, map_method="pca"))
    assert int(np.argmax(result.outlier_score)) == len(grocery)
    assert result.outlier[-1]


def test_odd_vectors_that_share_clusters_are_still_flagged(
    grocery: Descriptors,
) -> None:
    # the centre distance's weakness at scale (README): odd images numerous enough to take a
    # k-means centre look ordinary next to it; their neighbours are still far
    rng = np.random.default_rng(2)
    odd = rng.normal(size=(4, grocery.dim)).astype(np.float32)
    data = Descriptors(
        grocery.paths + [f"odd{i}.jpg" for i in range(4)], np.r_[grocery.vectors, odd]
    )
    result = run(data, AnalyticsConfig(k=5, map_method="pca"))
    assert len(set(result.cluster[-4:].tolist())) < 4  # some of them share a cluster
    assert set(np.argsort(-result.outlier_score)[:4].tolist()) == set(
        range(len(grocery), len(data))
    )
    assert result.outlier[-4:].all()


def test_isolation_forest_scores_every_image(grocery: Descriptors) -> None:
    result = run(grocery, AnalyticsConfig(k=4, outlier_method="iforest", map_method="pca"))
    assert result.outlier_score.shape == (len(grocery),) and np.isfinite(result.outlier_score).all()
    assert result.outlier_score.std() > 0


def test_duplicates_and_confused_items(grocery: Descriptors) -> None:
    copy = Descriptors(
        grocery.paths + ["copy.jpg"],
        np.r_[grocery.vectors, grocery.vectors[:1]],
        grocery.items + ["Copy-Item"],
    )
    result = run(copy, AnalyticsConfig(k=4, map_method="pca"))
    assert (grocery.paths[0], "copy.jpg", 1.0) in result.duplicates
    pair = tuple(sorted((grocery.items[0], "Copy-Item")))
    assert any((a, b) == pair for a, b, _, _ in result.confused)


@pytest.mark.parametrize("method", ["standard", "minmax", "robust", "l2"])
def test_scalings(grocery: Descriptors, method: str) -> None:
    x = scale(grocery.vectors, method)
    assert x.shape == grocery.vectors.shape and np.isfinite(x).all()
    if method == "standard":
        np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-4)
    if method == "minmax":
        assert x.min() >= 0 and x.max() <= 1 + 1e-6


def test_bad_runs(grocery: Descriptors) -> None:
    one = Descriptors(grocery.paths[:1], grocery.vectors[:1])
    with pytest.raises(BadInput, match="at least 2 images"):
        run(one)
    with pytest.raises(BadInput, match="cannot make 40 clusters"):
        kmeans(grocery.vectors, 40)
    with pytest.raises(BadInput, match="unknown clustering"):
        run(grocery, AnalyticsConfig(method="agglomerative"))
    with pytest.raises(BadInput, match="mixed|2-D"):
        Descriptors(["a"], np.ones(3, np.float32))


def test_readable_k_is_not_the_two_that_silhouette_favours() -> None:
    """Two far-apart groups of six tight clusters each: the silhouette over the whole grid
    says 2 (the groups); the readable choice looks from sqrt(n)/2 clusters up and finds the
    12 a person would read, at the best silhouette among those."""
    from sklearn.metrics import normalized_mutual_info_score

    from analytics.steps.cluster import readable_floor

    rng = np.random.default_rng(0)
    centres = []
    for group in (-500.0, 500.0):
        for j in range(6):
            c = np.zeros(8)
            c[0] = group
            c[1 + j % 7] = 6.0 * (1 + j // 7)
            centres.append(c)
    truth = np.repeat(np.arange(12), 10)
    x = (np.stack(centres)[truth] + rng.normal(0, 0.05, (120, 8))).astype(np.float32)
    assert kmeans(x, choose_by="silhouette").k == 2
    readable = kmeans(x)
    assert readable.k == 12
    assert min(readable.scores) == readable_floor(120) == 6
    assert normalized_mutual_info_score(truth, readable.labels) > 0.99

"""Outlier scores per image: distance to the nearest neighbours, distance to the cluster
centre, LOF, IsolationForest.

Every method's raw score is turned into a robust z-score ((s - median) / (1.4826 MAD)) over
all images (the centre distance first divided by its cluster's median: clusters differ in
spread); an image is an outlier above ``z``. Measured on the planted outliers of the synthetic
set (bench/analytics_scale.py, README): see there which is the default and why.
"""

from __future__ import annotations

import numpy as np

from core.errors import BadInput

METHODS = ("knn", "centre", "lof", "iforest")


def robust_z(scores: np.ndarray) -> np.ndarray:
    """``(s - median) / (1.4826 * MAD)`` of float (n,); 0 spread -> divide by 1e-6."""
    med = np.median(scores)
    mad = 1.4826 * np.median(np.abs(scores - med))
    return ((scores - med) / max(float(mad), 1e-6)).astype(np.float32)


def knn_scores(sims: np.ndarray) -> np.ndarray:
    """How far each image is from its nearest neighbours, as a robust z over all images.

    The raw score is one minus the mean cosine similarity to the ``k`` neighbours the pairs
    step found (`analytics.steps.pairs.neighbours`; -1 where fewer exist counts as far): an
    image with no close neighbour is odd wherever the clustering put it. Unlike the centre
    distance it does not depend on k-means: a crowd of odd images that took a centre of its
    own is still sparse.

    Args:
        sims: float32 (N, k) similarities to each image's nearest other images.
    """
    if sims.size == 0:
        return np.zeros(len(sims), np.float32)
    return robust_z(1.0 - sims.astype(np.float64).mean(axis=1))


def centre_scores(x: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """How far each image is from its cluster centre, relative to its cluster's median
    distance, as a robust z over all images (pooled: stable on small clusters).

    A far-off image can take a k-means centre of its own; so members of tiny clusters (fewer
    than max(3, 0.5 % of the images)) are scored by their distance to the nearest centre of a
    real cluster, against the spread of all real clusters' members; and a cluster's own
    median distance counts at most twice the typical one (many odd images can form a diffuse
    cluster of their own). Noise (-1) counts as one
    cluster.

    Args:
        x: float32 (N, d) the clustered vectors.
        labels: int (N,) cluster of each (-1 = noise).
        centres: float32 (K, d).
    """
    from analytics.steps.cluster import assign

    n = len(x)
    if len(centres) == 0:
        return robust_z(np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1)))
    safe = np.maximum(labels, 0)
    dist = np.sqrt(np.maximum(((x - centres[safe]) ** 2).sum(axis=1), 0))
    sizes = np.bincount(labels[labels >= 0], minlength=len(centres))
    real = sizes >= max(3, int(np.ceil(0.005 * n)))
    tiny = np.flatnonzero((labels >= 0) & ~real[safe])
    inside = np.flatnonzero((labels < 0) | real[safe])
    typical = float(np.median(dist[inside])) if len(inside) else 1.0
    ratio = np.ones(n, np.float32)  # distance / the cluster's median distance
    for c in np.unique(labels):
        members = labels == c
        if c < 0 or real[c]:
            # a cluster more than twice as spread as the typical one (a cloud of odd images
            # that took a centre of its own) may not excuse its members
            norm = min(float(np.median(dist[members])), 2 * typical)
            ratio[members] = dist[members] / max(norm, 1e-9)
    if len(tiny) and real.any():
        _, sq = assign(x[tiny], centres[real])
        ratio[tiny] = np.sqrt(np.maximum(sq, 0)) / max(typical, 1e-9)
    med = np.median(ratio[inside]) if len(inside) else 1.0
    mad = 1.4826 * np.median(np.abs(ratio[inside] - med)) if len(inside) else 1.0
    return ((ratio - med) / max(float(mad), 1e-6)).astype(np.float32)


def model_scores(
    vectors: np.ndarray, method: str, *, sample: int = 20_000, seed: int = 0
) -> np.ndarray:
    """LOF (``lof``: novelty mode, fitted on a sample) or IsolationForest (``iforest``) raw
    scores turned robust-z, for float32 (N, d) reduced vectors (larger = odder)."""
    n = len(vectors)
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, size=min(n, sample), replace=False)
    if method == "lof":
        from sklearn.neighbors import LocalOutlierFactor

        model = LocalOutlierFactor(n_neighbors=min(20, max(1, len(rows) - 1)), novelty=True)
    elif method == "iforest":
        from sklearn.ensemble import IsolationForest

        model = IsolationForest(n_estimators=100, random_state=seed)
    else:
        raise BadInput(f"unknown outlier method {method!r}; one of {', '.join(METHODS)}")
    model.fit(vectors[rows])
    raw = np.concatenate([-model.score_samples(vectors[s : s + 65536]) for s in range(0, n, 65536)])
    return robust_z(raw)

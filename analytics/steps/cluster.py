"""Clustering: FAISS k-means (k given or chosen on a sample) and HDBSCAN with noise points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import BadInput

CHUNK = 65536
K_GRID = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)


@dataclass(frozen=True)
class Clustering:
    """Labels and centres.

    Attributes:
        labels: int64 (N,), -1 = noise.
        centres: float32 (K, d) (mean of each cluster's points).
        k: number of clusters (noise excluded).
        scores: for a chosen k: k -> the criterion's value on the sample.
    """

    labels: np.ndarray
    centres: np.ndarray
    k: int
    scores: dict[int, float]


def _faiss_kmeans(x: np.ndarray, k: int, seed: int, niter: int = 25):
    import faiss

    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=niter,
        seed=seed,
        gpu=faiss.get_num_gpus() > 0,
        verbose=False,
        max_points_per_centroid=512,
    )
    km.train(np.ascontiguousarray(x, np.float32))
    return km


def assign(vectors: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each vector, in chunks: int64 (N,) labels, float32 (N,) squared
    distances."""
    import faiss

    index = faiss.IndexFlatL2(centres.shape[1])
    index.add(np.ascontiguousarray(centres, np.float32))
    labels = np.empty(len(vectors), np.int64)
    dist = np.empty(len(vectors), np.float32)
    for s in range(0, len(vectors), CHUNK):
        d, i = index.search(np.ascontiguousarray(vectors[s : s + CHUNK], np.float32), 1)
        labels[s : s + CHUNK], dist[s : s + CHUNK] = i[:, 0], d[:, 0]
    return labels, dist


def criterion(x: np.ndarray, labels: np.ndarray, name: str, seed: int = 0) -> float:
    """CH, DB (negated, so larger is better) or silhouette of a labelled sample."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    if len(set(labels.tolist())) < 2:
        return float("-inf")
    if name == "ch":
        return float(calinski_harabasz_score(x, labels))
    if name == "db":
        return -float(davies_bouldin_score(x, labels))
    if name == "silhouette":
        return float(silhouette_score(x, labels, sample_size=min(len(x), 4000), random_state=seed))
    raise BadInput(f"unknown k criterion {name!r}; one of ch, db, silhouette")


def kmeans(
    vectors: np.ndarray,
    k: int = 0,
    *,
    choose_by: str = "silhouette",
    max_k: int = 50,
    sample: int = 20_000,
    seed: int = 0,
    on_try=None,
) -> Clustering:
    """FAISS k-means on every vector (GPU when faiss has one); ``k`` 0 = choose it.

    Choosing: each k of `K_GRID` up to ``max_k`` is fitted on a sample of at most ``sample``
    vectors and scored there by ``choose_by`` (``silhouette`` default, ``ch``, ``db``); the
    best k is then fitted on all vectors.

    Raises:
        BadInput: fewer than 2 images, or fewer images than clusters.
    """
    n = len(vectors)
    if n < 2:
        raise BadInput(f"clustering needs at least 2 images, got {n}")
    if k and k > n:
        raise BadInput(f"{n} images cannot make {k} clusters (k must be <= the image count)")
    scores: dict[int, float] = {}
    if not k:
        rng = np.random.default_rng(seed)
        rows = rng.choice(n, size=min(n, sample), replace=False)
        xs = np.ascontiguousarray(vectors[rows], np.float32)
        grid = [g for g in K_GRID if g <= min(max_k, max(2, len(xs) // 3))] or [2]
        for g in grid:
            km = _faiss_kmeans(xs, g, seed)
            labels, _ = assign(xs, km.centroids)
            scores[g] = criterion(xs, labels, choose_by, seed)
            if on_try is not None:
                on_try(g)
        k = max(scores, key=scores.get)
    km = _faiss_kmeans(vectors, k, seed)
    labels, _ = assign(vectors, km.centroids)
    return Clustering(labels, km.centroids.astype(np.float32), k, scores)


def hdbscan(
    vectors: np.ndarray,
    *,
    min_cluster_size: int = 0,
    sample: int = 20_000,
    seed: int = 0,
) -> Clustering:
    """scikit-learn HDBSCAN on a sample of (reduced) vectors; the rest take the label of
    their nearest sample point; noise is -1.

    Args:
        vectors: float32 (N, d), already reduced (10-30 dims work best).
        min_cluster_size: 0 = max(5, sample size / 200).
    """
    import faiss
    from sklearn.cluster import HDBSCAN

    n = len(vectors)
    if n < 2:
        raise BadInput(f"clustering needs at least 2 images, got {n}")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    xs = np.ascontiguousarray(vectors[rows], np.float32)
    mcs = min_cluster_size or max(5, len(xs) // 200)
    sample_labels = HDBSCAN(min_cluster_size=min(mcs, max(2, len(xs) - 1))).fit_predict(xs)
    labels = np.full(n, -1, np.int64)
    labels[rows] = sample_labels
    rest = np.setdiff1d(np.arange(n), rows)
    if len(rest):
        index = faiss.IndexFlatL2(xs.shape[1])
        index.add(xs)
        for s in range(0, len(rest), CHUNK):
            part = rest[s : s + CHUNK]
            _, nn = index.search(np.ascontiguousarray(vectors[part], np.float32), 1)
            labels[part] = sample_labels[nn[:, 0]]
    ids = sorted(set(labels.tolist()) - {-1})
    centres = (
        np.stack([vectors[labels == c].mean(axis=0) for c in ids])
        if ids
        else (np.zeros((0, vectors.shape[1]), np.float32))
    )
    remap = {c: i for i, c in enumerate(ids)}
    labels = np.array([remap.get(c, -1) for c in labels.tolist()], np.int64)
    return Clustering(labels, centres.astype(np.float32), len(ids), {})

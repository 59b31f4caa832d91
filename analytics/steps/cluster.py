"""Clustering: k-means (k given or chosen on a sample) and HDBSCAN with noise points.

k-means is scikit-learn's (k-means++ seeding; 10 restarts up to `SKLEARN_TRIAL_WORK` points
times clusters, 3 up to `SKLEARN_MAX_WORK`), FAISS's beyond (hundreds of thousands of images).
Choosing k (``k`` 0): the ``readable`` way (the default) takes the best silhouette among
the k that give a person clusters to read, at least `readable_floor` of them (the silhouette
alone favours 2 clusters on photos whose kinds shade into each other: 2 for 2,000 car photos
of 11 body types); ``silhouette``, ``ch`` and ``db`` score the whole grid.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from core.errors import BadInput

CHUNK = 65536
K_GRID = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 70, 80, 100, 120, 150, 200)
K_GRID += (250, 300, 400, 500, 600, 800, 1000)
SKLEARN_MAX_WORK = 20_000_000  # points x clusters up to which scikit-learn's k-means runs
SKLEARN_TRIAL_WORK = 2_000_000  # the same for each k tried when choosing (FAISS beyond)
CHOICES = ("readable", "silhouette", "ch", "db")


def readable_floor(n: int) -> int:
    """The fewest clusters the ``readable`` choice tries for ``n`` images: ceil(sqrt(n) / 2)
    (12 for 500 photos, 23 for 2,000, 50 for 10,000), at least 2."""
    return max(2, math.ceil(math.sqrt(n) / 2))


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


def _fit(
    x: np.ndarray, k: int, seed: int, restarts: int = 3, work: int = SKLEARN_MAX_WORK
) -> np.ndarray:
    """k-means centres of ``x``: scikit-learn (k-means++) up to ``work`` points x clusters,
    FAISS beyond."""
    if len(x) * k <= work:
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # a grid k above the distinct points: fewer clusters
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(k, n_init=restarts, random_state=seed).fit(x)
        return km.cluster_centers_.astype(np.float32)
    return _faiss_kmeans(x, k, seed).centroids


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
    choose_by: str = "readable",
    max_k: int = 50,
    sample: int = 20_000,
    seed: int = 0,
    on_try=None,
) -> Clustering:
    """k-means on every vector; ``k`` 0 = choose it.

    Choosing: each k of `K_GRID` up to ``max_k`` (and half the sample) is fitted on a sample
    of at most ``sample`` vectors and scored there by ``choose_by``: ``readable`` (default:
    the silhouette, over the k from `readable_floor` of the image count up), ``silhouette``,
    ``ch`` or ``db`` (every k of the grid); the best k is then fitted on all vectors.

    Raises:
        BadInput: fewer than 2 images, or fewer images than clusters.
    """
    n = len(vectors)
    if n < 2:
        raise BadInput(f"clustering needs at least 2 images, got {n}")
    if k and k > n:
        raise BadInput(f"{n} images cannot make {k} clusters (k must be <= the image count)")
    if choose_by not in CHOICES:
        raise BadInput(f"unknown k criterion {choose_by!r}; one of {', '.join(CHOICES)}")
    scores: dict[int, float] = {}
    if not k:
        rng = np.random.default_rng(seed)
        rows = rng.choice(n, size=min(n, sample), replace=False)
        xs = np.ascontiguousarray(vectors[rows], np.float32)
        top = min(max_k, max(2, (len(xs) * 4) // 5))  # near-singletons: identity-level sets
        low = min(readable_floor(n), top) if choose_by == "readable" else 2
        grid = [g for g in K_GRID if low <= g <= top] or [low]
        name = "silhouette" if choose_by == "readable" else choose_by
        for g in grid:
            labels, _ = assign(xs, _fit(xs, g, seed, restarts=1, work=SKLEARN_TRIAL_WORK))
            scores[g] = criterion(xs, labels, name, seed)
            if on_try is not None:
                on_try(g)
        k = max(scores, key=scores.get)
    restarts = 10 if n * k <= SKLEARN_TRIAL_WORK else 3  # cheap here: the best of 10 seedings
    centres = _fit(np.ascontiguousarray(vectors, np.float32), k, seed, restarts=restarts)
    labels, _ = assign(vectors, centres)
    return Clustering(labels, centres, k, scores)


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

"""Clustering: k-means (k given or chosen) and HDBSCAN with noise points.

k-means is scikit-learn's up to `SKLEARN_MAX_WORK` points times clusters, FAISS's beyond
(hundreds of thousands of images). Its centres start from a Ward tree of a sample of at most
`WARD_SAMPLE` images, cut at k (measured better than k-means++ restarts: see
docs/analytics.md); where k exceeds the sample, from k-means++ (10 restarts up to
`SKLEARN_TRIAL_WORK`, 3 above).

Choosing k (``k`` 0): the ``readable`` way (the default) cuts that Ward tree at every k of a
dense grid from `readable_floor` (a person gets clusters to read, not the 2 that the
silhouette alone favours on photos whose kinds shade into each other: 2 for 2,000 car photos
of 11 body types) up to ``max_k``, and takes the k whose silhouette stands highest above the
silhouette of the same cut on a reference without clusters (a Gaussian of the sample's own
principal spread: what clustering noise alone scores, which rises with k in many dimensions);
``silhouette``, ``ch`` and ``db`` score k-means over the whole of `K_GRID` (the older ways).
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
CHOICES = ("readable", "coarse", "silhouette", "ch", "db")
WARD_SAMPLE = 4000  # images the Ward tree is built on (its distance matrix: 64 MB at 4,000)
GRID_STEP = 1.08  # ratio between neighbouring k of the readable grid (then every k near the best)
REFINE = 24  # at most this many more k tried between the best grid k's neighbours
REFERENCES = 3  # draws of the no-cluster reference whose silhouettes k's scores subtract


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
        others: for a ``readable`` k: other k where the criterion peaks (best first), coarser
            or finer readings of the same images worth a re-cluster.
        chosen_by: how k was set, in words (``given``, ``readable (...)``...).
    """

    labels: np.ndarray
    centres: np.ndarray
    k: int
    scores: dict[int, float]
    others: tuple[int, ...] = ()
    chosen_by: str = "given"


def _faiss_kmeans(
    x: np.ndarray, k: int, seed: int, niter: int = 25, init: np.ndarray | None = None
):
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
    start = None if init is None else np.ascontiguousarray(init, np.float32)
    km.train(np.ascontiguousarray(x, np.float32), init_centroids=start)
    return km


def _fit(
    x: np.ndarray,
    k: int,
    seed: int,
    restarts: int = 3,
    work: int = SKLEARN_MAX_WORK,
    init: np.ndarray | None = None,
) -> np.ndarray:
    """k-means centres of ``x``: scikit-learn (k-means++, or from ``init``, float32 (k, d))
    up to ``work`` points x clusters, FAISS beyond."""
    if len(x) * k <= work:
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        start = "k-means++" if init is None else np.asarray(init, x.dtype)
        with warnings.catch_warnings():  # a grid k above the distinct points: fewer clusters
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(k, init=start, n_init=restarts if init is None else 1, random_state=seed)
            km.fit(x)
        return km.cluster_centers_.astype(np.float32)
    return _faiss_kmeans(x, k, seed, init=init).centroids


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


class WardTree:
    """Ward's hierarchical clustering of a sample (scipy), cut at any number of clusters."""

    def __init__(self, x: np.ndarray) -> None:
        from scipy.cluster.hierarchy import linkage

        self.x = np.ascontiguousarray(x, np.float32)
        self.merges = linkage(self.x.astype(np.float64), "ward")[:, :2].astype(np.int64)

    def cuts(self, ks) -> dict[int, np.ndarray]:
        """k -> int64 (n,) labels 0..k-1 of the tree cut at exactly k clusters (1 <= k <= n),
        in one pass over the merges."""
        n = len(self.x)
        wanted = {int(k) for k in ks if 1 <= k <= n}
        label = np.arange(n)
        members: dict[int, list[int]] = {i: [i] for i in range(n)}
        out: dict[int, np.ndarray] = {}
        if n in wanted:
            out[n] = label.copy()
        for j, (a, b) in enumerate(self.merges.tolist()):
            big, small = members.pop(a), members.pop(b)
            if len(big) < len(small):
                big, small = small, big
            label[small] = label[big[0]]
            big.extend(small)
            members[n + j] = big
            if n - j - 1 in wanted:
                out[n - j - 1] = np.unique(label, return_inverse=True)[1].astype(np.int64)
        return out

    def centres(self, k: int) -> np.ndarray:
        """float32 (k, d): the mean of each cluster of the cut at k."""
        labels = self.cuts([k])[k]
        sums = np.zeros((k, self.x.shape[1]), np.float64)
        np.add.at(sums, labels, self.x)
        return (sums / np.bincount(labels, minlength=k)[:, None]).astype(np.float32)


def no_cluster_reference(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """float32 like ``x``: a Gaussian with the mean and principal spread of ``x`` (no
    clusters), its rows scaled to unit length where those of ``x`` are."""
    rng = np.random.default_rng(seed)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=0)
    _, s, vt = np.linalg.svd(x64 - mean, full_matrices=False)
    z = rng.standard_normal((len(x), len(s))) * (s / np.sqrt(max(len(x) - 1, 1)))
    ref = mean + z @ vt
    norms = np.linalg.norm(x64, axis=1)
    if np.allclose(norms, 1.0, atol=1e-3):
        ref /= np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    return ref.astype(np.float32)


def _silhouettes(x: np.ndarray, cuts: dict[int, np.ndarray]) -> dict[int, float]:
    from sklearn.metrics import pairwise_distances, silhouette_score

    dist = pairwise_distances(x).astype(np.float32)
    return {k: float(silhouette_score(dist, lab, metric="precomputed")) for k, lab in cuts.items()}


def readable_grid(low: int, top: int) -> list[int]:
    """The k tried first by the ``readable`` choice: ``low`` to ``top``, each about
    `GRID_STEP` times the one before."""
    if top <= low:
        return [top]
    steps = max(1, math.ceil(math.log(top / low) / math.log(GRID_STEP)))
    return sorted({int(round(v)) for v in np.geomspace(low, top, steps + 1)})


def choose_readable(
    tree: WardTree, n: int, max_k: int, seed: int = 0, on_try=None, coarse: bool = False
) -> tuple[int, dict[int, float], tuple[int, ...]]:
    """The ``readable`` (or ``coarse``) k for ``n`` images from the Ward tree of a sample.

    Each k tried (`readable_grid` from `readable_floor` (n) to ``max_k`` and 4/5 of the
    sample, then every k, at most `REFINE`, between the chosen one's neighbours) scores its
    cut's silhouette minus the mean silhouette of the same cut on `REFERENCES` draws of
    `no_cluster_reference` (what noise alone scores: it rises with k in many dimensions).
    A score stands out of the noise when it is three standard errors above zero (the
    references' standard deviation at that k, or its median over the grid where larger:
    about a 5 % chance for the largest of some 60 scores of noise). Where none does, k is
    the floor. Otherwise k is the best score near the grid's best k (``coarse``: near its
    smallest local peak that stands out).

    Returns:
        k, the score of each k tried, and the other k where the score peaks and stands out
        (local maxima of the grid above the floor's score; best first, at most 3).
    """
    m = len(tree.x)
    top = max(2, min(max_k, (m * 4) // 5, m - 1))
    low = min(readable_floor(n), top)
    refs = [WardTree(no_cluster_reference(tree.x, seed + b)) for b in range(REFERENCES)]
    scores: dict[int, float] = {}
    error: dict[int, float] = {}

    def score(ks) -> None:
        ks = [k for k in ks if k not in scores]
        if not ks:
            return
        data = _silhouettes(tree.x, tree.cuts(ks))
        null = [_silhouettes(r.x, r.cuts(ks)) for r in refs]
        for k in ks:
            values = np.array([q[k] for q in null])
            scores[k] = round(data[k] - float(values.mean()), 5)
            error[k] = float(values.std() * math.sqrt(1 + 1 / len(refs)))
            if on_try is not None:
                on_try(k)

    grid = readable_grid(low, top)
    score(grid)
    noise = float(np.median([error[g] for g in grid]))

    def stands_out(g: int) -> bool:
        return scores[g] >= 3 * max(error[g], noise)

    peaks = [
        g
        for j, g in enumerate(grid)
        if stands_out(g)
        and (j == 0 or scores[g] > scores[grid[j - 1]])
        and (j == len(grid) - 1 or scores[g] >= scores[grid[j + 1]])
    ]
    if not peaks:  # nothing stands out of the noise: the fewest readable clusters
        k = grid[0]
    else:
        target = peaks[0] if coarse else max(peaks, key=lambda g: (scores[g], -g))
        i = grid.index(target)
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        between = list(range(lo + 1, hi))
        if len(between) > REFINE:
            between = np.unique(np.linspace(lo + 1, hi - 1, REFINE).round().astype(int))
        score(between)
        k = max((g for g in scores if lo <= g <= hi), key=lambda g: (scores[g], -g))
    others = [g for g in peaks if abs(g - k) > max(1, k // 10) and scores[g] > scores[grid[0]]]
    return k, scores, tuple(sorted(others, key=lambda g: -scores[g])[:3])


def kmeans(
    vectors: np.ndarray,
    k: int = 0,
    *,
    choose_by: str = "readable",
    max_k: int = 1000,
    sample: int = 20_000,
    seed: int = 0,
    on_try=None,
) -> Clustering:
    """k-means on every vector; ``k`` 0 = choose it.

    Its centres start from the Ward tree of a sample of at most `WARD_SAMPLE` vectors, cut at
    k (k-means++ where k is above that sample's size). Choosing: ``readable`` (default:
    `choose_readable` on that tree), or ``silhouette``, ``ch`` or ``db``: each k of `K_GRID`
    up to ``max_k`` fitted by k-means on a sample of at most ``sample`` vectors and scored.

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
    rng = np.random.default_rng(seed)
    scores: dict[int, float] = {}
    others: tuple[int, ...] = ()
    how = "given"
    tree = None
    tree_way = choose_by in ("readable", "coarse")
    if (k or tree_way) and n >= 3:
        rows = np.sort(rng.choice(n, size=min(n, WARD_SAMPLE), replace=False))
        tree = WardTree(vectors[rows])
    if not k and tree_way:
        if tree is None:
            k = n
        else:
            coarse = choose_by == "coarse"
            k, scores, others = choose_readable(tree, n, max_k, seed, on_try, coarse)
        which = "at its first clear peak" if choose_by == "coarse" else "furthest"
        how = (
            f"{choose_by}: the silhouette {which} above no-cluster references' "
            f"(k >= {readable_floor(n)}; Ward tree of {min(n, WARD_SAMPLE)} images)"
        )
    elif not k:
        rows = rng.choice(n, size=min(n, sample), replace=False)
        xs = np.ascontiguousarray(vectors[rows], np.float32)
        top = min(max_k, max(2, (len(xs) * 4) // 5))  # near-singletons: identity-level sets
        grid = [g for g in K_GRID if 2 <= g <= top] or [2]
        for g in grid:
            labels, _ = assign(xs, _fit(xs, g, seed, restarts=1, work=SKLEARN_TRIAL_WORK))
            scores[g] = criterion(xs, labels, choose_by, seed)
            if on_try is not None:
                on_try(g)
        k = max(scores, key=scores.get)
        how = f"{choose_by} over k-means at k = {grid[0]}..{grid[-1]}"
    init = tree.centres(k) if tree is not None and k <= len(tree.x) else None
    restarts = 10 if n * k <= SKLEARN_TRIAL_WORK else 3  # cheap here: the best of 10 seedings
    x = np.ascontiguousarray(vectors, np.float32)
    centres = _fit(x, k, seed, restarts=restarts, init=init)
    labels, _ = assign(vectors, centres)
    return Clustering(labels, centres, k, scores, others, how)


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

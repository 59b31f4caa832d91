"""The analytics run: descriptors -> scale -> PCA -> cluster -> pairs -> outliers -> map ->
metrics, one step after the other, each reported to a `Steps` progress sink."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from analytics.data import AnalyticsResult, Descriptors
from analytics.steps import cluster as clustering
from analytics.steps.map2d import map_2d
from analytics.steps.metrics import internal_metrics, label_metrics
from analytics.steps.outliers import centre_scores, knn_scores, model_scores
from analytics.steps.pairs import confused_items, near_duplicates, neighbours
from analytics.steps.reduce import pca
from analytics.steps.scale import scale
from core.errors import BadInput


@dataclass(frozen=True)
class AnalyticsConfig:
    """Options of a run (defaults measured in bench/analytics_*.py; see the README)."""

    scaling: str = "l2"  # standard | minmax | robust | l2 | none (embeddings: l2)
    pca_dims: int = 64  # reduce to this many dims before clustering (>= D: no PCA)
    method: str = "kmeans"  # kmeans | hdbscan
    k: int = 0  # clusters; 0 = choose by `choose_by` on a sample
    choose_by: str = "readable"  # readable | coarse | silhouette | ch | db (steps/cluster.py)
    max_k: int = 1000  # largest k tried when choosing
    hdbscan_dims: int = 16  # HDBSCAN runs on this many PCA dims
    outlier_method: str = "knn"  # knn | centre | lof | iforest
    outlier_z: float = 3.5  # robust z-score above which an image is an outlier
    map_method: str = "tsne"  # tsne | pca (of a sample; the rest placed by neighbours)
    map_sample: int = 3000  # images the 2-D map is fitted on
    duplicate_similarity: float = 0.97  # cosine at or above which two images are look-alikes
    neighbours: int = 10  # neighbours searched per image (duplicates, confusions)
    sample: int = 20_000  # sample for choosing k, HDBSCAN, LOF/IsolationForest, metrics
    seed: int = 0


#: images x dimensions up to which k-means runs on the scaled vectors, not the PCA-reduced ones
CLUSTER_FULL_DIMS_MAX = 50_000 * 256

ProgressFn = Callable[[str, int, int], None]  # step name, done, total


class Steps:
    """Times each step and reports it: ``with steps("cluster"): ...``."""

    def __init__(self, report: ProgressFn | None = None) -> None:
        self.report = report or (lambda name, done, total: None)
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str, total: int = 1) -> Iterator[Callable[[int], None]]:
        start = time.perf_counter()
        self.report(name, 0, total)
        yield lambda done: self.report(name, done, total)
        self.report(name, total, total)
        self.timings[name] = round(time.perf_counter() - start, 3)


def run(
    data: Descriptors,
    config: AnalyticsConfig = AnalyticsConfig(),
    labels: dict[str, str] | None = None,
    report: ProgressFn | None = None,
) -> AnalyticsResult:
    """Cluster, score and map ``data``.

    Args:
        data: N >= 2 descriptors (float32 (N, D)).
        config: the options.
        labels: path -> label, for NMI / ARI (images without one are left out).
        report: called ``(step, done, total)`` as each step progresses.

    Raises:
        BadInput: fewer than 2 images, more clusters than images, a bad option.
    """
    n = len(data)
    if n < 2:
        raise BadInput(f"analytics needs at least 2 images, got {n} ({data.source})")
    steps = Steps(report)
    with steps("scale"):
        x = scale(data.vectors, config.scaling)
    # k-means on every dimension where that is cheap (PCA to 64 lost ARI: 400 dog photos,
    # k = 285 dogs: 0.752 against 0.803 on the scaled vectors); the reduced ones beyond
    whole = x if x.size <= CLUSTER_FULL_DIMS_MAX else None
    with steps("pca"):
        x, kept = pca(x, config.pca_dims, sample=max(config.sample, 50_000), seed=config.seed)
    if config.choose_by in ("readable", "coarse"):  # the grid, then at most REFINE more k
        top = min(config.max_k, clustering.WARD_SAMPLE * 4 // 5, max(2, n * 4 // 5))
        grid = clustering.readable_grid(min(clustering.readable_floor(n), top), top)
        trials = len(grid) + clustering.REFINE
    else:
        trials = len(clustering.K_GRID)
    with steps("cluster", trials if not config.k else 1) as tick:
        tried = iter(range(1, 10_000))
        if config.method == "kmeans":
            result = clustering.kmeans(
                x if whole is None else whole,
                config.k,
                choose_by=config.choose_by,
                max_k=config.max_k,
                sample=config.sample,
                seed=config.seed,
                on_try=lambda k: tick(min(next(tried), trials)),
            )
        elif config.method == "hdbscan":
            low, _ = pca(x, config.hdbscan_dims, seed=config.seed)
            result = clustering.hdbscan(low, sample=config.sample, seed=config.seed)
        else:
            raise BadInput(f"unknown clustering method {config.method!r}; kmeans or hdbscan")
    with steps("pairs"):
        sims, ids = neighbours(x, config.neighbours, config.seed)
        duplicates = near_duplicates(data.paths, sims, ids, config.duplicate_similarity)
        confused = confused_items(data.items, sims, ids) if data.items else []
    with steps("outliers"):
        labels_ = result.labels
        centres = clustering_centres(x, labels_, result.k)
        if result.k:
            sq = ((x - centres[np.maximum(labels_, 0)]) ** 2).sum(axis=1)
        else:
            sq = ((x - x.mean(axis=0)) ** 2).sum(axis=1)
        if config.outlier_method == "knn":
            score = knn_scores(sims)
        elif config.outlier_method == "centre":
            score = centre_scores(x, labels_, centres)
        else:
            score = model_scores(x, config.outlier_method, sample=config.sample, seed=config.seed)
        outlier = score > config.outlier_z
        rank = _centre_rank(sq, labels_)
    with steps("map"):
        xy = map_2d(x, config.map_method, sample=config.map_sample, seed=config.seed)
    with steps("metrics"):
        metrics: dict[str, float] = {"images": n, "clusters": result.k, "pca_variance": kept}
        metrics["noise"] = int((labels_ < 0).sum())
        metrics["outliers"] = int(outlier.sum())
        metrics |= internal_metrics(x, labels_, sample=config.sample, seed=config.seed)
        if labels:
            metrics |= label_metrics(labels_, [labels.get(p) for p in data.paths])
        if config.method == "kmeans":
            metrics["k_chosen_by"] = result.chosen_by
        if result.others:
            metrics["k_others"] = list(result.others)
        if result.scores:
            metrics["k_scores"] = {str(k): round(v, 4) for k, v in sorted(result.scores.items())}
    return AnalyticsResult(
        paths=list(data.paths),
        cluster=labels_,
        outlier=outlier,
        outlier_score=score,
        xy=xy,
        items=data.items,
        centre_rank=rank,
        metrics=metrics,
        duplicates=duplicates,
        confused=confused,
        timings=steps.timings,
    )


def clustering_centres(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each cluster's vectors: float32 (k, d) (empty clusters: zeros)."""
    sums = np.zeros((k, x.shape[1]), np.float64)
    np.add.at(sums, np.maximum(labels, 0), x)
    counts = np.bincount(np.maximum(labels, 0), minlength=k).astype(np.float64)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def _centre_rank(sq: np.ndarray, labels: np.ndarray) -> np.ndarray:
    rank = np.zeros(len(sq), np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members[np.argsort(sq[members], kind="stable")]] = np.arange(len(members))
    return rank

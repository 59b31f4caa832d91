"""Cluster quality on a sample (CH, DB, silhouette) and agreement with labels (NMI, ARI)."""

from __future__ import annotations

import numpy as np


def internal_metrics(
    vectors: np.ndarray, labels: np.ndarray, *, sample: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """CH, DB and silhouette of the clustered (non-noise) images, on at most ``sample`` rows
    (silhouette on at most 4,000): empty when fewer than 2 clusters."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    keep = np.flatnonzero(labels >= 0)
    rng = np.random.default_rng(seed)
    rows = rng.choice(keep, size=min(len(keep), sample), replace=False) if len(keep) else keep
    x, y = vectors[rows], labels[rows]
    if len(set(y.tolist())) < 2 or len(rows) <= len(set(y.tolist())):
        return {}
    return {
        "ch": round(float(calinski_harabasz_score(x, y)), 3),
        "db": round(float(davies_bouldin_score(x, y)), 4),
        "silhouette": round(
            float(silhouette_score(x, y, sample_size=min(len(x), 4000), random_state=seed)), 4
        ),
    }


def label_metrics(labels: np.ndarray, truth: list[str | None]) -> dict[str, float]:
    """NMI and ARI against the known labels (images without a label are left out; noise
    counts as one more cluster)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rows = [i for i, t in enumerate(truth) if t is not None]
    if len(rows) < 2:
        return {}
    pred = labels[rows]
    true = [truth[i] for i in rows]
    return {
        "nmi": round(float(normalized_mutual_info_score(true, pred)), 4),
        "ari": round(float(adjusted_rand_score(true, pred)), 4),
        "labelled": len(rows),
    }

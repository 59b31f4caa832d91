"""Outlier scores per image: distance to the cluster centre (default), LOF, IsolationForest.

Every method's raw score is turned into a robust z-score ((s - median) / (1.4826 MAD)), per
cluster for the centre distance (clusters differ in spread), over all images for the others;
an image is an outlier above ``z``. Measured on the planted outliers of the synthetic set
(bench/analytics_scale.py, README): see there why the centre distance is the default.
"""

from __future__ import annotations

import numpy as np

from core.errors import BadInput

METHODS = ("centre", "lof", "iforest")


def robust_z(scores: np.ndarray) -> np.ndarray:
    """``(s - median) / (1.4826 * MAD)`` of float (n,); 0 spread -> divide by 1e-6."""
    med = np.median(scores)
    mad = 1.4826 * np.median(np.abs(scores - med))
    return ((scores - med) / max(float(mad), 1e-6)).astype(np.float32)


def centre_scores(sq_dist: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Robust z of each image's distance to its centre within its cluster; noise (-1) is
    scored against all noise points."""
    dist = np.sqrt(np.maximum(sq_dist, 0))
    out = np.zeros(len(dist), np.float32)
    for c in np.unique(labels):
        members = labels == c
        if members.sum() >= 3:
            out[members] = robust_z(dist[members])
    return out


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

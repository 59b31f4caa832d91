"""The 2-D map: t-SNE (or PCA) of a sample; every other image is placed at the mean position
of its nearest sample neighbours (bounded memory and time at 416k images)."""

from __future__ import annotations

import numpy as np

from core.errors import BadInput

MAPS = ("tsne", "pca")


def map_2d(
    vectors: np.ndarray, method: str = "tsne", *, sample: int = 3000, seed: int = 0, k: int = 5
) -> np.ndarray:
    """``float32 (N, d) -> float32 (N, 2)``, coordinates scaled into [0, 1].

    Raises:
        BadInput: an unknown method.
    """
    import faiss

    n = len(vectors)
    if method not in MAPS:
        raise BadInput(f"unknown map {method!r}; one of {', '.join(MAPS)}")
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 4:
        xy = np.zeros((n, 2), np.float32)
        xy[:, 0] = np.linspace(0, 1, n)
        return xy
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    xs = np.ascontiguousarray(vectors[rows], np.float32)
    if method == "tsne" and len(xs) > 10:
        from sklearn.manifold import TSNE

        perplexity = float(min(30, (len(xs) - 1) / 3))
        ys = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(xs)
    else:
        centred = xs - xs.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        ys = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[:1].T, 0 * xs[:, 0]]
    ys = ys.astype(np.float32)
    xy = np.empty((n, 2), np.float32)
    xy[rows] = ys
    rest = np.setdiff1d(np.arange(n), rows)
    if len(rest):
        index = faiss.IndexFlatL2(xs.shape[1])
        index.add(xs)
        kk = min(k, len(xs))
        for s in range(0, len(rest), 65536):
            part = rest[s : s + 65536]
            _, nn = index.search(np.ascontiguousarray(vectors[part], np.float32), kk)
            xy[part] = ys[nn].mean(axis=1)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return ((xy - lo) / np.where(hi - lo > 0, hi - lo, 1)).astype(np.float32)

"""PCA: fitted on a sample (bounded memory), applied to every vector in chunks."""

from __future__ import annotations

import numpy as np

CHUNK = 65536


def pca(
    vectors: np.ndarray, dims: int, *, sample: int = 50_000, seed: int = 0
) -> tuple[np.ndarray, float]:
    """``float32 (N, D) -> float32 (N, d)`` with ``d = min(dims, D, N)``.

    Fitted (faiss PCAMatrix) on at most ``sample`` rows, applied chunk by chunk, so memory
    is O(sample x D + N x d). ``dims`` >= D returns the vectors unchanged.

    Returns:
        The reduced vectors and the fraction of variance they keep (1.0 when unchanged).
    """
    import faiss

    n, d = vectors.shape
    target = int(min(dims, d, max(1, n - 1)))
    if target >= d or n < 3:
        return np.ascontiguousarray(vectors, np.float32), 1.0
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    train = np.ascontiguousarray(vectors[rows], np.float32)
    matrix = faiss.PCAMatrix(d, target)
    matrix.train(train)
    eig = faiss.vector_to_array(matrix.eigenvalues)
    kept = float(eig[:target].sum() / max(eig.sum(), 1e-12))
    out = np.empty((n, target), np.float32)
    for s in range(0, n, CHUNK):
        out[s : s + CHUNK] = matrix.apply(np.ascontiguousarray(vectors[s : s + CHUNK], np.float32))
    return out, kept

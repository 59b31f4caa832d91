"""Near-duplicate image pairs and confused item pairs, from one k-nearest-neighbour search.

Cosine similarity on L2-normalised vectors; an exact index up to 50,000 images, an IVF
index above (approximate, bounded time), searched in chunks: never an N x N matrix.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

CHUNK = 16384


def neighbours(vectors: np.ndarray, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other images of each: float32 (N, k) similarities, int64 (N, k) ids
    (-1 where fewer exist)."""
    import faiss

    n, d = vectors.shape
    x = np.ascontiguousarray(vectors, np.float32).copy()
    faiss.normalize_L2(x)
    if n <= 50_000:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        index.train(x[rng.choice(n, size=min(n, 40 * nlist), replace=False)])
        index.nprobe = 8
    index.add(x)
    kk = min(k + 1, n)
    sims = np.full((n, k), -1.0, np.float32)
    ids = np.full((n, k), -1, np.int64)
    for s in range(0, n, CHUNK):
        d_, i_ = index.search(x[s : s + CHUNK], kk)
        for row in range(len(i_)):
            keep = i_[row] != s + row
            got_i, got_d = i_[row][keep][:k], d_[row][keep][:k]
            ids[s + row, : len(got_i)], sims[s + row, : len(got_d)] = got_i, got_d
    return sims, ids


def near_duplicates(
    paths: list[str], sims: np.ndarray, ids: np.ndarray, threshold: float
) -> list[tuple[str, str, float]]:
    """Pairs (a, b, similarity) with similarity >= ``threshold``, each pair once, best first."""
    found: dict[tuple[int, int], float] = {}
    rows, cols = np.nonzero((sims >= threshold) & (ids >= 0))
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        a, b = sorted((r, int(ids[r, c])))
        found[(a, b)] = max(found.get((a, b), -1.0), float(sims[r, c]))
    pairs = sorted(found.items(), key=lambda kv: -kv[1])
    return [(paths[a], paths[b], round(s, 4)) for (a, b), s in pairs]


def confused_items(
    items: list[str], sims: np.ndarray, ids: np.ndarray
) -> list[tuple[str, str, int, float]]:
    """Item pairs the search confuses: for each image whose nearest neighbour is an image of
    another item, count the pair (a, b) once per image; most images first.

    Returns:
        (item_a, item_b, images, max_similarity) with item_a < item_b.
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    best: dict[tuple[str, str], float] = defaultdict(lambda: -1.0)
    for i, (j, s) in enumerate(zip(ids[:, 0].tolist(), sims[:, 0].tolist(), strict=True)):
        if j < 0 or items[i] == items[j]:
            continue
        pair = tuple(sorted((items[i], items[j])))
        counts[pair] += 1
        best[pair] = max(best[pair], s)
    rows = [(a, b, n, round(best[(a, b)], 4)) for (a, b), n in counts.items()]
    return sorted(rows, key=lambda r: (-r[2], -r[3]))

"""The typed data the analytics steps pass along: descriptors of images, and the results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import BadInput


@dataclass(frozen=True)
class Descriptors:
    """One vector per image.

    Attributes:
        paths: N image paths (files, or ``item/image`` names of a catalog), unique.
        vectors: float32 (N, D), finite.
        items: N item ids (a catalog's items, or labels), or None when unknown.
        source: where they came from (for messages).
    """

    paths: list[str]
    vectors: np.ndarray
    items: list[str] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        v = self.vectors
        if not isinstance(v, np.ndarray) or v.ndim != 2:
            shape = getattr(v, "shape", None)
            raise BadInput(f"{self.source}: vectors must be a 2-D array (N, D), got {shape}")
        if len(self.paths) != v.shape[0]:
            raise BadInput(f"{self.source}: {len(self.paths)} paths but {v.shape[0]} vectors")
        if self.items is not None and len(self.items) != len(self.paths):
            raise BadInput(f"{self.source}: {len(self.items)} items for {len(self.paths)} paths")
        if len(set(self.paths)) != len(self.paths):
            raise BadInput(f"{self.source}: the same path appears more than once")
        if v.shape[0] and v.shape[1] == 0:
            raise BadInput(f"{self.source}: vectors have no dimensions")
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            where = [self.paths[i] for i in np.flatnonzero(bad)[:5]]
            raise BadInput(
                f"{self.source}: {int(bad.sum())} vectors hold NaN or infinite values "
                f"(first: {', '.join(where)})",
                details={"paths": where},
            )

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        """D, the vector length."""
        return int(self.vectors.shape[1])


def stack_vectors(rows: list, paths: list[str], source: str) -> np.ndarray:
    """Rows of one length -> float32 (N, D).

    Raises:
        BadInput: rows of different lengths (names the first odd one) or not numbers.
    """
    if not rows:
        return np.zeros((0, 0), np.float32)
    arrays = []
    length = None
    for path, row in zip(paths, rows, strict=True):
        try:
            a = np.asarray(row, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"{source}: the vector of {path!r} is not numbers: {exc}") from None
        if length is None:
            length = a.size
        elif a.size != length:
            raise BadInput(
                f"{source}: vectors of mixed length: {path!r} has {a.size}, the first has {length}",
                details={"path": path, "length": int(a.size), "expected": int(length)},
            )
        arrays.append(a)
    return np.stack(arrays)


@dataclass
class AnalyticsResult:
    """What a run found, per image and overall.

    Attributes:
        paths: N image paths.
        cluster: int (N,), -1 = noise (density clustering).
        outlier: bool (N,).
        outlier_score: float32 (N,), larger = odder (a robust z-score).
        xy: float32 (N, 2) map coordinates.
        items: N item ids or labels, or None.
        centre_rank: int (N,) rank of each image by closeness to its cluster centre (0 =
            closest), for the contact sheets.
        metrics: name -> value (k, ch, db, silhouette, nmi, ari...).
        duplicates: (path_a, path_b, similarity) near-duplicate pairs.
        confused: (item_a, item_b, images, max_similarity) item pairs the search confuses.
        timings: step -> seconds.
        quality: each image's pixel quality flags joined by ``;`` (`analytics.quality.
            flag_images`), or None when the run had no pixels (descriptors alone).
    """

    paths: list[str]
    cluster: np.ndarray
    outlier: np.ndarray
    outlier_score: np.ndarray
    xy: np.ndarray
    items: list[str] | None = None
    centre_rank: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    duplicates: list[tuple[str, str, float]] = field(default_factory=list)
    confused: list[tuple[str, str, int, float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    quality: list[str] | None = None

"""Scaling of descriptors: standard (z-score), min-max, robust (median / IQR), or none."""

from __future__ import annotations

import numpy as np

from core.errors import BadInput

SCALINGS = ("standard", "minmax", "robust", "none", "l2")


def scale(vectors: np.ndarray, method: str = "standard") -> np.ndarray:
    """``float32 (N, D) -> float32 (N, D)`` scaled per column (``l2``: per row).

    Constant columns stay 0 (no division by zero).

    Raises:
        BadInput: an unknown method.
    """
    v = np.asarray(vectors, np.float32)
    if method == "none" or len(v) == 0:
        return v
    if method == "l2":
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.maximum(norms, 1e-12)
    if method == "standard":
        centre, spread = v.mean(axis=0), v.std(axis=0)
    elif method == "minmax":
        centre, spread = v.min(axis=0), v.max(axis=0) - v.min(axis=0)
    elif method == "robust":
        q1, centre, q3 = np.percentile(v, [25, 50, 75], axis=0)
        spread = q3 - q1
    else:
        raise BadInput(f"unknown scaling {method!r}; one of {', '.join(SCALINGS)}")
    spread = np.where(spread > 1e-12, spread, 1.0).astype(np.float32)
    return ((v - centre) / spread).astype(np.float32)

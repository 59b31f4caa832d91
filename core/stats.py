"""Small statistics shared by the benchmarks and the catalog calibration fit."""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion, ``z`` standard errors wide each side.

    ``z = 0`` gives the point estimate twice; no trials give ``(0, 1)``.
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)

"""Run the grouping on photos with a matching pipeline's models (embedder, verifier).

`discover_photos` is what the discovery job runs on the crops it gathered, and what
``bench.discovery`` measures: embed each crop with the kind's embedder, extract its keypoints
once with the verifier, and `discovery.group.group_photos` with the kind's calibration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from discovery.group import GroupConfig, Grouping, group_photos
from matching.pipeline import Pipeline
from matching.score import Calibration


def discover_photos(
    pipeline: Pipeline,
    kind: str,
    crops: Sequence[np.ndarray],
    config: GroupConfig = GroupConfig(),
    *,
    calibration: Calibration | None = None,
    progress: Callable[[str, int, int], None] = lambda stage, d, t: None,
) -> Grouping:
    """Groups of ``crops`` (uint8 RGB each) that show one individual.

    Args:
        calibration: scores pairs (default: the kind's, `Pipeline.calibration`).
    """
    calibration = calibration or pipeline.calibration(kind)
    if not crops:
        return Grouping([], 0, 0, 0, 0, calibration.threshold)
    progress("embedding", 0, len(crops))
    vectors = np.asarray(pipeline.embedder_for(kind).embed(list(crops)), np.float32)
    verifier = pipeline.verifier
    features: dict[int, object] = {}

    def keypoints(i: int):
        if i not in features:
            assert verifier is not None
            features[i] = verifier.extract(crops[i])
        return features[i]

    def verify(i: int, others: Sequence[int]) -> list[tuple[int, float]]:
        assert verifier is not None
        results = verifier.match_many(keypoints(i), [keypoints(j) for j in others])
        return [(int(r.inliers), float(r.spread)) for r in results]

    return group_photos(
        vectors,
        verify if verifier is not None else None,
        calibration,
        config,
        progress=lambda d, t: progress("verifying", d, t),
    )

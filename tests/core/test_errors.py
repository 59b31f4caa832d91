"""The internal error type: a broken invariant between stages is a server error, never a 422."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import BadInput, InternalError, SightingError
from detection.detections import Detections
from labels.result import LabelResult
from matching.result import FrameResult


def test_internal_error_is_a_500_and_no_user_facing_error() -> None:
    assert issubclass(InternalError, SightingError)
    assert not issubclass(InternalError, BadInput)
    assert (InternalError.status, InternalError.code) == (500, "internal_error")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Detections(xyxy=np.zeros((2, 4)), confidence=np.zeros(3), class_id=np.zeros(2)),
        lambda: Detections(np.zeros((2, 4)), np.zeros(2), np.zeros(2))[np.ones(3, bool)],
        lambda: FrameResult(Detections(np.zeros((1, 4)), np.zeros(1), np.zeros(1)), []),
        lambda: LabelResult(["cat", "dog"], np.array([1.0], np.float32)),
    ],
    ids=["detections-shape", "detections-mask", "frame-result-rows", "label-result-rows"],
)
def test_broken_invariants_raise_internal_error_not_bad_input(build) -> None:
    with pytest.raises(InternalError) as caught:
        build()
    assert not isinstance(caught.value, BadInput)

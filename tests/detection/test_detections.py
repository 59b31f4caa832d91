"""`Detections`: shape validation, indexing, empty and merge (no model needed)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.errors import InternalError
from detection.detections import Detections, object_array


def _dets(n: int, *, crops: bool = False) -> Detections:
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 50, (n, 2))
    data = {"class_name": object_array([f"c{i}" for i in range(n)])}
    if crops:
        data["crop"] = object_array([np.full((i + 1, 2, 3), i, np.uint8) for i in range(n)])
    return Detections(
        xyxy=np.concatenate([xy, xy + 10], 1),
        confidence=rng.uniform(0, 1, n),
        class_id=np.arange(n),
        data=data,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # boxes with 3 coordinates
        ({"xyxy": np.zeros((2, 3)), "confidence": np.zeros(2), "class_id": np.zeros(2)}, "(*, 4)"),
        # one score too many
        ({"xyxy": np.zeros((2, 4)), "confidence": np.zeros(3), "class_id": np.zeros(2)}, "(2,)"),
        # class ids as a column
        (
            {"xyxy": np.zeros((2, 4)), "confidence": np.zeros(2), "class_id": np.zeros((2, 1))},
            "(2,)",
        ),
        # a flat box vector
        ({"xyxy": np.zeros(8), "confidence": np.zeros(2), "class_id": np.zeros(2)}, "(*, 4)"),
        # per-row extra with the wrong length
        (
            {
                "xyxy": np.zeros((2, 4)),
                "confidence": np.zeros(2),
                "class_id": np.zeros(2),
                "data": {"class_name": np.array(["a"], dtype=object)},
            },
            "class_name",
        ),
        # per-row extra that is not an array
        (
            {
                "xyxy": np.zeros((1, 4)),
                "confidence": np.zeros(1),
                "class_id": np.zeros(1),
                "data": {"class_name": ["a"]},
            },
            "ndarray",
        ),
    ],
)
def test_shape_validation_names_expected_and_actual(kwargs: dict, message: str) -> None:
    with pytest.raises(InternalError, match=re.escape(message)):
        Detections(**kwargs)


def test_dtypes_are_normalised() -> None:
    det = Detections(xyxy=[[0, 0, 4, 4]], confidence=[0.5], class_id=[3])
    assert det.xyxy.dtype == np.float32 and det.xyxy.shape == (1, 4)
    assert det.confidence.dtype == np.float32
    assert det.class_id.dtype == np.int64


def test_empty_is_well_formed() -> None:
    det = Detections.empty()
    assert len(det) == 0
    assert det.xyxy.shape == (0, 4) and det.xyxy.dtype == np.float32
    assert det.confidence.shape == (0,) and det.class_id.shape == (0,)
    assert det.class_name.shape == (0,)
    assert len(det[np.zeros(0, dtype=bool)]) == 0


@pytest.mark.parametrize(
    ("index", "expected_rows"),
    [
        (np.array([True, False, True, False, True]), [0, 2, 4]),  # boolean mask
        (np.array([4, 1]), [4, 1]),  # integer indices keep their order
        ([3], [3]),  # list of indices
        (slice(1, 3), [1, 2]),  # slice
        (2, [2]),  # one int still gives Detections
        (np.zeros(5, dtype=bool), []),  # mask selecting nothing
        (np.array([], dtype=np.int64), []),  # no indices
    ],
)
def test_indexing_returns_detections(index: object, expected_rows: list[int]) -> None:
    det = _dets(5, crops=True)
    sub = det[index]
    assert isinstance(sub, Detections)
    assert len(sub) == len(expected_rows)
    np.testing.assert_array_equal(sub.xyxy, det.xyxy[expected_rows].reshape(-1, 4))
    np.testing.assert_array_equal(sub.class_id, det.class_id[expected_rows])
    assert list(sub.class_name) == [f"c{i}" for i in expected_rows]
    assert [c.shape[0] for c in sub.data["crop"]] == [i + 1 for i in expected_rows]


def test_mask_of_wrong_length_is_refused() -> None:
    with pytest.raises(InternalError, match=r"\(5,\)"):
        _dets(5)[np.array([True, False])]


def test_merge_concatenates_rows_and_common_data() -> None:
    a, b = _dets(2, crops=True), _dets(3)
    merged = Detections.merge([a, b, Detections.empty()])
    assert len(merged) == 5
    np.testing.assert_array_equal(merged.xyxy, np.concatenate([a.xyxy, b.xyxy]))
    assert list(merged.class_name) == ["c0", "c1", "c0", "c1", "c2"]
    assert "crop" not in merged.data  # only keys every part has
    assert len(Detections.merge([])) == 0


def test_merge_keeps_object_arrays_of_equal_shaped_crops() -> None:
    crop = np.zeros((4, 4, 3), np.uint8)
    part = Detections(
        xyxy=np.zeros((1, 4)),
        confidence=np.ones(1),
        class_id=np.zeros(1),
        data={"crop": object_array([crop])},
    )
    merged = Detections.merge([part, part])
    assert merged.data["crop"].shape == (2,)
    assert merged.data["crop"][1].shape == (4, 4, 3)


def test_area() -> None:
    det = Detections(xyxy=[[0, 0, 4, 5], [2, 2, 1, 1]], confidence=[1, 1], class_id=[0, 0])
    np.testing.assert_array_equal(det.area, [20, 0])

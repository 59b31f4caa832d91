"""`Detections`: one frame's boxes, scores, classes and per-row extras, as arrays.

In the spirit of supervision's ``Detections``: the detector returns one of these per frame and
every later stage reads (and selects from) it; JSON is made once, at the API's edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.errors import InternalError

#: ``class_id`` of the extra whole-frame row (catalog items COCO has no class for).
WHOLE_FRAME_CLASS_ID = -1
#: ``class_name`` of the extra whole-frame row.
WHOLE_FRAME_CLASS_NAME = "image"


def _check(name: str, value: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """Raise `InternalError` unless ``value`` has ``shape`` (``None`` matches any length)."""
    ok = value.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, value.shape, strict=False)
    )
    if not ok:
        parts = ["*" if s is None else str(s) for s in shape]
        expected = f"({parts[0]},)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"
        raise InternalError(
            f"Detections.{name}: expected shape {expected}, got {tuple(value.shape)}"
        )


@dataclass
class Detections:
    """The detections of one frame.

    Attributes:
        xyxy: float32 (N, 4) boxes in pixels of the original frame, ``x1, y1, x2, y2`` with
            x2/y2 exclusive, clipped to the frame.
        confidence: float32 (N,) scores in [0, 1] (objectness x class probability).
        class_id: int64 (N,) class indices of the detector; ``-1`` for the whole-frame row.
        data: per-row extras, each an array whose first axis is N: ``"class_name"`` object (N,)
            of str; ``"crop"`` object (N,) of uint8 (h, w, 3) RGB arrays when crops were asked
            for; later stages may add e.g. ``"embedding"`` float32 (N, D).
        tracker_id: int64 (N,) track ids of a tracked stream (``-1``: a detection not
            tracked yet), or None when the frame was not tracked.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    data: dict[str, np.ndarray] = field(default_factory=dict)
    tracker_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(
            (-1, 4) if np.size(self.xyxy) == 0 else np.shape(self.xyxy)
        )
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        self.class_id = np.asarray(self.class_id, dtype=np.int64)
        _check("xyxy", self.xyxy, (None, 4))
        n = len(self.xyxy)
        _check("confidence", self.confidence, (n,))
        _check("class_id", self.class_id, (n,))
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64)
            _check("tracker_id", self.tracker_id, (n,))
        if not isinstance(self.data, dict):
            raise InternalError(
                f"Detections.data: expected a dict of arrays, got {type(self.data)}"
            )
        for key, value in self.data.items():
            if not isinstance(value, np.ndarray):
                raise InternalError(
                    f"Detections.data[{key!r}]: expected ndarray, got {type(value)}"
                )
            if value.ndim == 0 or len(value) != n:
                raise InternalError(
                    f"Detections.data[{key!r}]: expected shape ({n}, ...), got {value.shape}"
                )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> Detections:
        """Select rows: a boolean mask (N,), integer indices, a slice or one int.

        Returns:
            A new `Detections` (arrays are views or copies per numpy's indexing rules).
        """
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype == bool and index.shape != (len(self),):
                raise InternalError(
                    f"Detections mask: expected shape ({len(self)},), got {index.shape}"
                )
            if index.size == 0:
                index = index.astype(np.int64)
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            data={k: v[index] for k, v in self.data.items()},
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
        )

    @property
    def class_name(self) -> np.ndarray:
        """object (N,) of str: the class names (empty when the detector gave none)."""
        return self.data.get("class_name", np.empty(0, dtype=object))

    @property
    def area(self) -> np.ndarray:
        """float32 (N,) box areas in pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)

    @classmethod
    def empty(cls) -> Detections:
        """No detections: xyxy (0, 4), confidence (0,), class_id (0,), class_name (0,)."""
        return cls(
            xyxy=np.empty((0, 4), dtype=np.float32),
            confidence=np.empty(0, dtype=np.float32),
            class_id=np.empty(0, dtype=np.int64),
            data={"class_name": np.empty(0, dtype=object)},
        )

    @classmethod
    def merge(cls, parts: Iterable[Detections]) -> Detections:
        """Concatenate the rows of several `Detections` (e.g. of tiles of one frame).

        Only ``data`` keys present in every part are kept, and ``tracker_id`` only when every
        part has one. An empty list gives `empty()`.
        """
        parts = list(parts)
        if not parts:
            return cls.empty()
        keys = set(parts[0].data)
        for p in parts[1:]:
            keys &= set(p.data)
        data = {}
        for key in sorted(keys):
            values = [p.data[key] for p in parts]
            if values[0].dtype == object:
                data[key] = object_array([x for v in values for x in v])
            else:
                data[key] = np.concatenate(values)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            data=data,
            tracker_id=(
                np.concatenate([p.tracker_id for p in parts])
                if all(p.tracker_id is not None for p in parts)
                else None
            ),
        )


def object_array(items: Sequence[object]) -> np.ndarray:
    """Pack Python objects (str, arrays) into a 1-D object array without numpy broadcasting."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out

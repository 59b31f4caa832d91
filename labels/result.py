"""The one answer shape of every labeler, and its one serialiser.

A labeler turns an image (a whole photo or a detection's crop) into a probability per label.
Both labelers (by text: `labels.text`; by example photos: `labels.examples`) answer a
`LabelResult`; `result_to_dict` makes the JSON ``{"labels": [{"label", "probability"}], "top",
"unknown"}`` once, at the edges (the command line, the API, the batch's JSON lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.errors import BadInput, InternalError
from core.images import check_rgb


@dataclass(frozen=True)
class LabelResult:
    """The labels of one image.

    Attributes:
        labels: the label names, in the label set's (or the prompts') order.
        probabilities: float32 (L,) in [0, 1]; with ``unknown`` they sum to 1.
        unknown: probability that the image is none of the labels (0 for a text labeler, whose
            prompts share all the probability; a "without a tiger" prompt plays that part).
    """

    labels: tuple[str, ...]
    probabilities: np.ndarray
    unknown: float = 0.0

    def __post_init__(self) -> None:
        p = np.asarray(self.probabilities, dtype=np.float32).reshape(-1)
        if len(p) != len(self.labels):
            raise InternalError(
                f"LabelResult: {len(self.labels)} labels but {len(p)} probabilities"
            )
        object.__setattr__(self, "probabilities", p)

    @property
    def top(self) -> str | None:
        """The most probable label, or None when ``unknown`` is more probable than each."""
        if not self.labels:
            return None
        best = int(np.argmax(self.probabilities))
        return self.labels[best] if self.probabilities[best] >= self.unknown else None

    @property
    def top_probability(self) -> float:
        """Probability of `top` (of ``unknown`` when top is None)."""
        if self.top is None:
            return float(self.unknown)
        return float(self.probabilities.max())

    def probability(self, label: str) -> float:
        """Probability of one label (BadInput when it is not one of ``labels``)."""
        try:
            return float(self.probabilities[self.labels.index(label)])
        except ValueError:
            raise BadInput(f"no label {label!r}; labels are {list(self.labels)}") from None


def result_to_dict(result: LabelResult) -> dict:
    """``{"labels": [{"label", "probability"}], "top", "unknown"}``: the one JSON shape."""
    return {
        "labels": [
            {"label": label, "probability": round(float(p), 4)}
            for label, p in zip(result.labels, result.probabilities, strict=True)
        ],
        "top": result.top,
        "unknown": round(float(result.unknown), 4),
    }


class Labeler(Protocol):
    """What every labeler does: images -> one `LabelResult` each."""

    #: the label names, in order (what `LabelResult.labels` holds)
    labels: tuple[str, ...]

    def label(self, images: Sequence[np.ndarray]) -> list[LabelResult]:
        """Label images.

        Args:
            images: uint8 (h, w, 3) RGB each (a photo or a crop; (h, w) grey is accepted).

        Returns:
            One `LabelResult` per image, in order.
        """
        ...


def as_rgb(image: object, index: int = 0) -> np.ndarray:
    """Check one image: uint8 (h, w, 3); grey (h, w) or (h, w, 1) is replicated to 3 channels
    (night infrared frames).

    Raises:
        BadInput: not a uint8 array of shape (h, w), (h, w, 1) or (h, w, 3) with h, w > 0.
    """
    return check_rgb(image, f"image {index}", grey=True)

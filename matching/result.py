"""The typed result of matching one frame: a `Match` per candidate, a `FrameResult` per frame.

One result for every way a frame is matched: `matching.pipeline.Pipeline.match_frames` (a
photo, the detect and search endpoints), `tracking.tracker.TrackedMatcher.process` (a stream
frame: the detections carry ``tracker_id``) and `tracking.video.run_video` (a video file).
`matching.report` is its one JSON serialiser. Light on purpose (NumPy and `Detections`, no
torch), so the stream client can read answers with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import InternalError
from detection.detections import Detections


@dataclass(frozen=True)
class Match:
    """One candidate catalog item for one detection."""

    item_id: str
    image_id: str  # the catalog image that matched best
    similarity: float  # cosine similarity of the embeddings, in [-1, 1]
    inliers: int  # RANSAC-consistent keypoint matches (0 when not verified)
    spread: float  # share of the catalog image covered by the inliers, in [0, 1]
    checked: bool  # keypoints were run for this candidate
    verified: bool  # score >= the calibrated threshold
    score: float  # probability that this is the same item, in [0, 1]
    # rank=local: the inliers the score read (weighted by match confidence and foreground,
    # `matching.local_rank`); None: the score read ``inliers``
    evidence: float | None = None


@dataclass(frozen=True)
class Ranking:
    """Which ranking produced a frame's lists, and how much of it was done.

    Attributes:
        method: ``embedding`` (similarity, keypoints verifying its shortlist) or ``local``
            (keypoints on the object rank the catalog's top candidates: `matching.local_rank`).
        candidates: candidates keypoints were to rank, summed over the ranked crops.
        checked: of them, the ones keypoints compared before the time budget ran out.
        partial: the budget ran out: the candidates not compared keep their embedding order.
    """

    method: str = "embedding"
    candidates: int = 0
    checked: int = 0
    partial: bool = False

    def __add__(self, other: Ranking) -> Ranking:
        return Ranking(
            self.method,
            self.candidates + other.candidates,
            self.checked + other.checked,
            self.partial or other.partial,
        )


@dataclass
class FrameResult:
    """Everything found in one frame.

    Attributes:
        detections: the frame's N detections, crops included; ``detections.tracker_id`` is
            set (int64 (N,), ``-1`` not tracked yet) when the frame was tracked, else None.
        matches: N lists, per detection its candidates best first (a tracked detection's
            are its track's last verified answer).
        timings: seconds per stage (for the whole batch this frame was part of).
        verified_now: bool (N,) whether keypoints were run for the detection in this frame.
            Default: a detection with a candidate whose keypoints were checked (`Match.checked`),
            which is exact for untracked frames; the tracker sets it (a track reuses the
            verdict, checked candidates included, of an earlier frame).
        ranking: which ranking produced ``matches`` and how many candidates it checked.

    Raises:
        InternalError: ``matches`` or ``verified_now`` do not have one row per detection.
    """

    detections: Detections
    matches: list[list[Match]]
    timings: dict[str, float] = field(default_factory=dict)
    verified_now: np.ndarray | None = None
    ranking: Ranking = field(default_factory=Ranking)

    def __post_init__(self) -> None:
        n = len(self.detections)
        if len(self.matches) != n:
            raise InternalError(f"FrameResult: {n} detections but {len(self.matches)} match lists")
        if self.verified_now is None:
            checked = [any(m.checked for m in ms) for ms in self.matches]
            self.verified_now = np.array(checked, dtype=bool).reshape(n)
        else:
            self.verified_now = np.asarray(self.verified_now, dtype=bool)
            if self.verified_now.shape != (n,):
                raise InternalError(
                    f"FrameResult.verified_now: expected shape ({n},), "
                    f"got {self.verified_now.shape}"
                )

    @property
    def tracked(self) -> bool:
        """Whether the frame went through a tracker (detections have ``tracker_id``)."""
        return self.detections.tracker_id is not None

    @property
    def track_ids(self) -> np.ndarray:
        """int64 (N,) track ids, ``-1`` for a detection not tracked (all of an untracked frame)."""
        tid = self.detections.tracker_id
        return tid if tid is not None else np.full(len(self.detections), -1, dtype=np.int64)

    @property
    def verify_calls(self) -> int:
        """Detections keypoint-verified in this frame."""
        return int(np.count_nonzero(self.verified_now))

    def best(self, row: int) -> Match | None:
        """The best candidate of detection ``row`` (None when it has none)."""
        return self.matches[row][0] if self.matches[row] else None

    def ranked_items(self, top_k: int) -> list[Match]:
        """Each item's best match over all detections, best first, at most ``top_k``: the
        ranked list of a whole photo (the search endpoint)."""
        best: dict[str, Match] = {}
        for matches in self.matches:
            for m in matches:
                if m.item_id not in best or (m.score, m.similarity) > (
                    best[m.item_id].score,
                    best[m.item_id].similarity,
                ):
                    best[m.item_id] = m
        return sorted(best.values(), key=lambda m: (-m.score, -m.similarity))[:top_k]

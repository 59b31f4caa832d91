"""Local ranking: a crop's candidates ranked by keypoints on the object (issue 28, WildFusion).

On a kind no embedder was trained on, the right item is rarely in the embedding's top five,
so keypoints that only verify those five never see it. Local ranking compares the query crop's
keypoints with the cached keypoints of the catalog's top N items by embedding, in two stages:

1. **descriptor pass** (every candidate, cheap): mutual nearest neighbours of the keypoint
   descriptors (one matrix product per chunk of candidates), then the same RANSAC homography
   check as verification on them (``geometry``): geometrically consistent matches, weighted
   by descriptor similarity and foreground, and the share of the catalog object they cover.
   Random mutual neighbours between unrelated images are common; consistent ones are not, so
   every candidate of the shortlist gets evidence a ranking can trust (SIFT-style matching,
   Lowe 2004; the evidence WildFusion calibrates);
2. **LightGlue + RANSAC** (the best ``verify`` candidates of stage 1, fused with similarity,
   batched): the stronger matcher refines the evidence of the candidates that lead; a
   candidate keeps the larger of its two evidences, so more checking never lowers it.

Matches on the background (outside the object's box, on either side) count
``background_weight`` instead of 1. A `Deadline` bounds the work of a request: the candidates
not reached keep their embedding order (``compared`` False) and the ranking says it is partial.

The evidence is fed to the calibrated fused score (`matching.score`) as the candidate's
inliers and spread, so ranking and confirmation stay one calibrated number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from matching.features import LocalFeatures
from matching.geometry import hull_coverage

#: Rankings an answer can come from (`matching.result.Ranking.method`).
RANKS = ("embedding", "local")
#: The largest shortlist a request may ask for.
MAX_LOCAL_SHORTLIST = 5000


class Deadline:
    """A per-request time budget for keypoint work (``seconds`` <= 0: no limit)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._end = clock() + seconds if seconds > 0 else float("inf")
        self.hit = False  # set once a caller found the time spent

    def expired(self) -> bool:
        """Whether the budget is spent (and remember that it was)."""
        if self._clock() >= self._end:
            self.hit = True
        return self.hit


@dataclass
class LocalEvidence:
    """Keypoint evidence of every candidate of one crop (arrays of C, in candidate order).

    Attributes:
        inliers: float64 RANSAC inliers weighted by match confidence and foreground (0 where
            no geometric check ran); the fused score's inliers.
        raw_inliers: int64 plain RANSAC inliers of the same check (0 where none ran).
        coverage: float64 share of the catalog object's box covered by the inliers' hull.
        mutual: float64 stage-1 foreground-weighted mutual nearest neighbours.
        compared: bool, stage 1 ran for the candidate.
        checked: bool, a geometric check ran for the candidate (RANSAC on its stage-1
            matches, or LightGlue + RANSAC).
        refined: bool, LightGlue + RANSAC ran for the candidate.
        partial: the deadline came before every candidate was compared and the planned
            ones checked.
    """

    inliers: np.ndarray
    raw_inliers: np.ndarray
    coverage: np.ndarray
    mutual: np.ndarray
    compared: np.ndarray
    checked: np.ndarray
    refined: np.ndarray
    partial: bool = False

    @classmethod
    def none(cls, n: int) -> LocalEvidence:
        """No evidence for ``n`` candidates."""
        z = np.zeros(n)
        return cls(z.copy(), np.zeros(n, np.int64), z.copy(), z.copy(), *np.zeros((3, n), bool))


def foreground_weights(
    points: np.ndarray, boxes: np.ndarray | None, background_weight: float
) -> np.ndarray:
    """1 for points inside any of ``boxes``, ``background_weight`` elsewhere.

    Args:
        points: float (M, 2) x, y pixels.
        boxes: float (B, 4) xyxy foreground boxes in the same pixels, or None (all foreground).

    Returns:
        float64 (M,).
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if boxes is None or background_weight >= 1.0:
        return np.ones(len(points))
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.ones(len(points))
    x, y = points[:, :1], points[:, 1:]
    inside = (
        (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])
    ).any(axis=1)
    return np.where(inside, 1.0, float(background_weight))


def object_coverage(points: np.ndarray, box: np.ndarray | None, image_size: tuple[int, int]):
    """Share of the object's box (the whole image when None) covered by the points' hull."""
    if box is None:
        return hull_coverage(points, image_size)
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = max(1.0, y2 - y1), max(1.0, x2 - x1)
    inside = foreground_weights(points, np.array([box]), 0.0) > 0
    shifted = np.asarray(points, np.float32).reshape(-1, 2)[inside] - np.float32([x1, y1])
    return hull_coverage(shifted, (int(round(h)), int(round(w))))


def mutual_matches(
    query: LocalFeatures,
    refs: Sequence[LocalFeatures],
    min_similarity: float,
    chunk: int = 32,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mutual nearest neighbours of descriptors between the query and each reference.

    Args:
        query: keypoint features (K >= 1) of the query crop.
        refs: keypoint features of each candidate.
        min_similarity: smallest descriptor dot product kept (descriptors are unit length).
        chunk: references per matrix product (bounds memory: K x chunk*K floats).

    Returns:
        Per reference (query indices (M,), reference indices (M,)); M = 0 when either side
        has no keypoints.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    out = [empty] * len(refs)
    if len(query) == 0 or query.is_dense:
        return out
    q = torch.from_numpy(query.descriptors)
    for start in range(0, len(refs), chunk):
        part = [i for i in range(start, min(start + chunk, len(refs))) if len(refs[i])]
        if not part:
            continue
        r = torch.from_numpy(np.concatenate([refs[i].descriptors for i in part]))
        sims = (q @ r.T).numpy()  # (Kq, sum K)
        best_q = sims.argmax(axis=0)  # each reference keypoint's best query keypoint
        offset = 0
        for i in part:
            k = len(refs[i])
            block = sims[:, offset : offset + k]
            best_r = block.argmax(axis=1)  # each query keypoint's best in this reference
            qi = np.arange(len(q))
            mutual = best_q[offset + best_r] == qi
            keep = mutual & (block[qi, best_r] >= min_similarity)
            out[i] = (qi[keep], best_r[keep])
            offset += k
    return out


@dataclass(frozen=True)
class LocalOptions:
    """Knobs of local ranking (per request; `matching.pipeline.PipelineConfig` carries them).

    Attributes:
        verify: candidates, the best of the descriptor pass fused with similarity, that
            LightGlue + RANSAC check (5: the same LightGlue work per crop as the embedding
            ranking's shortlist, on the candidates the keypoints chose; a LightGlue pair
            costs ~100x a descriptor pass on 2 CPU cores).
        background_weight: what a match outside the object's box counts (1 counts fully).
        min_similarity: smallest descriptor dot product of a stage-1 mutual match (RANSAC
            then keeps the consistent ones; 0.6 let enough through on small catalog images
            while 0.5 gave random textures consistent-looking sets, `docs/local-ranking.md`).
        batch: LightGlue pairs per call (and candidates between two looks at the deadline).
    """

    verify: int = 5
    background_weight: float = 0.25
    min_similarity: float = 0.6
    batch: int = 5


@dataclass
class LocalJob:
    """One query crop's work: its keypoints and its candidates (embedding order).

    Attributes:
        query: the crop's keypoints, extracted once.
        foreground: float (B, 4) boxes of the object in crop pixels, or None (the whole crop).
        similarity: float (C,) cosine similarity of each candidate.
        refs: C catalog keypoints (None: not available; the candidate stays unchecked).
        ref_boxes: C xyxy boxes of each catalog image's object (None: the whole image).
    """

    query: LocalFeatures
    foreground: np.ndarray | None
    similarity: np.ndarray
    refs: list[LocalFeatures | None]
    ref_boxes: list[np.ndarray | None]


#: Scores candidates from (similarity, inliers, spread, checked): the calibrated fused score.
Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
#: RANSAC on given correspondences: (query points, reference points, confidences, reference
#: features) -> `matching.verifier.MatchResult` (`matching.verifier.Verifier.verify_matches`).
Geometry = Callable[[np.ndarray, np.ndarray, np.ndarray, LocalFeatures], object]


def rank_locally(
    jobs: Sequence[LocalJob],
    match_many: Callable[[LocalFeatures, Sequence[LocalFeatures]], list],
    scorer: Scorer,
    options: LocalOptions,
    deadline: Deadline,
    geometry: Geometry | None = None,
) -> list[LocalEvidence]:
    """Keypoint evidence for every candidate of every job, within the deadline.

    Stage 1 (descriptor pass, and ``geometry`` on its matches) runs for all jobs first, in
    chunks of candidates in embedding order; stage 2 (LightGlue + RANSAC, `match_many`) then
    takes each job's best ``options.verify`` candidates by ``scorer`` of the stage-1
    evidence, ``options.batch`` at a time, job after job, until done or the deadline.

    Args:
        jobs: the crops to rank.
        match_many: the verifier's ``match_many(query, refs) -> [MatchResult]``.
        scorer: the fused score, to order stage 2.
        options: knobs.
        deadline: the request's time budget.
        geometry: the verifier's ``verify_matches``: RANSAC on each candidate's stage-1
            matches (None: stage 1 only counts them, to order stage 2).

    Returns:
        One `LocalEvidence` per job.
    """
    out = [LocalEvidence.none(len(job.refs)) for job in jobs]
    bg = options.background_weight
    for job, ev in zip(jobs, out, strict=True):
        q_weight = foreground_weights(job.query.keypoints, job.foreground, bg)
        # dense (LoFTR) features have no descriptors to pass: straight to stage 2, in
        # embedding order
        ev.compared[:] = [r is not None and r.is_dense for r in job.refs]
        usable = [i for i, r in enumerate(job.refs) if r is not None and not r.is_dense]
        for start in range(0, len(usable), 32):
            if deadline.expired():
                break
            part = usable[start : start + 32]
            pairs = mutual_matches(job.query, [job.refs[i] for i in part], options.min_similarity)
            for i, (qi, ri) in zip(part, pairs, strict=True):
                ref = job.refs[i]
                assert ref is not None
                box = job.ref_boxes[i]
                r_weight = foreground_weights(
                    ref.keypoints[ri], None if box is None else box[None], bg
                )
                ev.mutual[i] = float(np.sum(q_weight[qi] * r_weight))
                ev.compared[i] = True
                if geometry is not None and len(qi) >= 4:
                    confidence = np.einsum(
                        "ij,ij->i", job.query.descriptors[qi], ref.descriptors[ri]
                    )
                    result = geometry(job.query.keypoints[qi], ref.keypoints[ri], confidence, ref)
                    _take(ev, i, job, ref, result, bg)
    queues: list[list[int]] = []
    for job, ev in zip(jobs, out, strict=True):
        if geometry is None:  # order stage 2 by the mutual neighbours
            key = scorer(job.similarity, ev.mutual, np.zeros(len(job.refs)), ev.compared)
        else:
            key = scorer(job.similarity, ev.inliers, ev.coverage, ev.compared)
        order = [i for i in np.argsort(-key, kind="stable") if ev.compared[i]]
        queues.append(order[: options.verify])
    while any(queues) and not deadline.expired():
        for j, (job, ev) in enumerate(zip(jobs, out, strict=True)):
            todo, queues[j] = queues[j][: options.batch], queues[j][options.batch :]
            if not todo or deadline.expired():
                continue
            refs = [job.refs[i] for i in todo]
            results = match_many(job.query, refs)
            for i, ref, result in zip(todo, refs, results, strict=True):
                ev.refined[i] = True
                _take(ev, i, job, ref, result, bg)
    for job, ev, queue in zip(jobs, out, queues, strict=True):
        usable = sum(r is not None for r in job.refs)
        ev.partial = bool(queue) or int(ev.compared.sum()) < usable
    return out


def _take(ev: LocalEvidence, i: int, job: LocalJob, ref, result, bg: float) -> None:
    """Record one RANSAC result as candidate ``i``'s evidence, unless it already has more
    (stage 2 refines stage 1's evidence; more checking never lowers a candidate).

    Inliers count only when they make a homography the verifier accepts (at least its
    ``min_inliers``, plausible): a handful of chance inliers is what unrelated images give,
    aligned dog faces above all (their eyes and noses sit at the same places), and counted
    they pushed the right dog out of the top 20 behind look-alikes with 3-7 of them."""
    ev.checked[i] = True
    if result.inliers == 0 or result.homography is None:
        return
    mask = result.inlier_mask
    box = job.ref_boxes[i]
    weight = (
        np.asarray(result.match_scores)[mask]
        * foreground_weights(result.query_points[mask], job.foreground, bg)
        * foreground_weights(result.ref_points[mask], None if box is None else box[None], bg)
    )
    if float(weight.sum()) <= ev.inliers[i]:
        return
    ev.inliers[i] = float(weight.sum())
    ev.raw_inliers[i] = result.inliers
    ev.coverage[i] = object_coverage(result.ref_points[mask], box, ref.image_size)

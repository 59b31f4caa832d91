"""Frames in, matches out: detect -> embed -> search -> verify -> fused score.

`Pipeline` owns the three models of a worker and turns frames into, per detection, a ranked
list of catalog items. It also describes catalog images (`describe_reference`) so that the
catalog side and the query side are computed by the same code.

Ranking never hides candidates: every detection gets its ``top_k`` items, ordered by the fused
``score`` (see `matching.score`); ``min_score`` filters only when a caller asks for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from core.errors import BadInput, NotFound
from core.settings import Settings, default_of
from detection.detections import WHOLE_FRAME_CLASS_ID
from detection.detector import Detector
from embedding.embedder import Embedder
from matching.calibration.record import resolve
from matching.catalog_view import CatalogView
from matching.features import LocalFeatures
from matching.local_rank import (
    MAX_LOCAL_SHORTLIST,
    RANKS,
    Deadline,
    LocalJob,
    LocalOptions,
    rank_locally,
)
from matching.result import FrameResult, Match, Ranking
from matching.score import (
    KINDS,
    Calibration,
    candidate_features,
    conservative_default,
    load_calibrations,
)
from matching.verifier import Verifier

log = logging.getLogger(__name__)

#: Suffix of the second vector of a catalog image: its main object crop.
CROP_TAG = ":crop"


@dataclass(frozen=True)
class PipelineConfig:
    """Per-request options of the matcher.

    ``top_k``, ``shortlist`` and ``whole_frame`` take their defaults from `Settings`
    (``SIGHTING_TOP_K``, ``SIGHTING_SHORTLIST``, ``SIGHTING_WHOLE_FRAME``); `from_settings`
    takes them from a configured one. The others are per-request options or internal knobs.
    """

    top_k: int = default_of("top_k")  # items returned per detection
    shortlist: int = default_of("shortlist")  # best candidates per detection keypoints verify
    verify: bool = True  # run keypoint verification at all
    min_score: float = 0.0  # drop matches scoring below this (0 keeps the full ranked list)
    classes: tuple[str, ...] | None = None  # detector class names to keep; None keeps all
    whole_frame: bool = default_of("whole_frame")  # also match the whole frame as one crop
    refs_per_item: int = 2  # catalog images of a candidate that are matched against the crop
    verify_crops: int = 3  # per frame, only the crops with the best similarity are verified
    main_crop_min_area: float = 0.15  # a reference's main object must cover this share
    # local ranking (`matching.local_rank`, docs/local-ranking.md)
    rank: str | None = None  # "embedding", "local"; None: the catalog kind's default
    local_kinds: tuple[str, ...] = tuple(default_of("local_rank_kinds"))  # local by default
    local_shortlist: int = default_of("local_shortlist")  # top N by embedding keypoints rank
    local_budget_s: float = default_of("local_budget_s")  # keypoint seconds; 0 = no limit
    local: LocalOptions = LocalOptions()
    query_max_side: int = 1024  # rank=local: long side of the query crop for its keypoints

    def __post_init__(self) -> None:
        if self.rank is not None and self.rank not in RANKS:
            raise BadInput(f"rank must be one of {', '.join(RANKS)}, got {self.rank!r}")
        if not 1 <= self.local_shortlist <= MAX_LOCAL_SHORTLIST:
            raise BadInput(
                f"shortlist must be in [1, {MAX_LOCAL_SHORTLIST}], got {self.local_shortlist}"
            )
        if self.local_budget_s < 0:
            raise BadInput(f"the local ranking budget must be >= 0 s, got {self.local_budget_s}")

    @classmethod
    def from_settings(cls, settings: Settings, **options: object) -> PipelineConfig:
        """The configured ``top_k``, ``shortlist``, ``whole_frame`` and local ranking
        settings, then ``options``.

        Raises:
            TypeError: an option that is not a field (a misspelt one fails, never ignored).
        """
        configured = cls(
            top_k=settings.top_k,
            shortlist=settings.shortlist,
            whole_frame=settings.whole_frame,
            local_kinds=tuple(settings.local_rank_kinds),
            local_shortlist=settings.local_shortlist,
            local_budget_s=settings.local_budget_s,
        )
        return replace(configured, **options)

    def rank_for(self, kind: str) -> str:
        """The ranking a catalog of ``kind`` gets: the request's, else the kind's default."""
        if self.rank is not None:
            return self.rank
        return "local" if kind in self.local_kinds else "embedding"


@dataclass
class Reference:
    """What the catalog stores for one reference image.

    Attributes:
        vectors: float32 (V, D) L2-normalised; row 0 the whole image, row 1 (if any) its main
            object crop.
        tags: (V,) vector-id suffixes: ``""`` and `CROP_TAG`.
        box: int (4,) xyxy of the main object crop (the whole image when there is none).
        features: keypoints of the whole image, or None when no verifier is loaded.
        objects: detections the detector found in the image (None: not known, e.g. a
            reference read back from the store).
    """

    vectors: np.ndarray
    tags: list[str]
    box: np.ndarray
    features: LocalFeatures | None
    objects: int | None = None


class Timer:
    """Accumulates wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def image_id_of(vector_id: str) -> str:
    """The catalog image id a vector id belongs to (strips `CROP_TAG`)."""
    return vector_id[: -len(CROP_TAG)] if vector_id.endswith(CROP_TAG) else vector_id


class Pipeline:
    """The matching engine of one worker: a detector, an embedder, an optional verifier."""

    def __init__(
        self,
        detector: Detector,
        embedders: Embedder | dict[str, Embedder],
        verifier: Verifier | None,
        calibrations: dict[str, Calibration] | None = None,
    ) -> None:
        self.detector = detector
        #: the embedder of each catalog kind (one object may serve several kinds)
        self.embedders = (
            embedders if isinstance(embedders, dict) else dict.fromkeys(KINDS, embedders)
        )
        self.verifier = verifier
        #: one fused-score calibration per catalog kind (see `matching.score`)
        self.calibrations = calibrations or load_calibrations()

    def embedder_for(self, kind: str) -> Embedder:
        """The embedder of a catalog kind (``products`` when unknown)."""
        return self.embedders.get(kind) or self.embedders["products"]

    def calibration(self, kind: str) -> Calibration:
        """The score calibration of a catalog kind: the kind's, or the conservative default
        (`matching.score.conservative_default`) for a kind without one; never another
        kind's. A catalog's own calibration replaces it where it exists (`calibration_for`)."""
        found = self.calibrations.get(kind)
        return found if found is not None else conservative_default(kind)

    def calibration_for(self, catalog: CatalogView) -> tuple[Calibration, str]:
        """The calibration a catalog's matches are scored with, and its source: ``catalog``
        (its own, fitted on this very content over this kind calibration) or
        ``kind_default`` (none yet, too small, or stale: `matching.calibration`)."""
        base = self.calibration(catalog.kind)
        return resolve(catalog.own_calibration, catalog.content_digest, base)

    # ----------------------------------------------------------------------- catalog side
    def describe_reference(
        self, image: np.ndarray, kind: str = "products", config: PipelineConfig = PipelineConfig()
    ) -> Reference:
        """Vectors and keypoints of one catalog image.

        Args:
            image: uint8 (H, W, 3) RGB.
            kind: the catalog's kind (chooses the embedder).

        Returns:
            A `Reference`: the whole image's vector, plus the main object crop's vector when
            the detector finds one object covering at least ``main_crop_min_area`` of the
            image but not all of it.
        """
        h, w = image.shape[:2]
        crops = [image]
        tags = [""]
        box = np.array([0, 0, w, h], dtype=np.int64)
        det = self.detector.detect([image], whole_frame=False)[0]
        if len(det):
            areas = (det.xyxy[:, 2] - det.xyxy[:, 0]) * (det.xyxy[:, 3] - det.xyxy[:, 1])
            share = areas / float(h * w)
            eligible = np.flatnonzero((share >= config.main_crop_min_area) & (share < 0.9))
            if len(eligible):
                best = eligible[np.argmax(det.confidence[eligible] * share[eligible])]
                box = det.xyxy[best].round().astype(np.int64)
                crops.append(det.data["crop"][best])
                tags.append(CROP_TAG)
        vectors = self.embedder_for(kind).embed(crops)
        features = self.verifier.extract(image) if self.verifier is not None else None
        return Reference(vectors=vectors, tags=tags, box=box, features=features, objects=len(det))

    # ------------------------------------------------------------------------- query side
    def match_frames(
        self,
        frames: Sequence[np.ndarray],
        catalog: CatalogView,
        config: PipelineConfig = PipelineConfig(),
    ) -> list[FrameResult]:
        """Match every object of every frame against a catalog.

        Args:
            frames: uint8 (H, W, 3) RGB each; sizes may differ.
            catalog: the catalog to search.
            config: per-request options.

        Returns:
            One `FrameResult` per frame, in order.
        """
        timer = Timer()
        with timer.stage("detect"):
            detections = self.detector.detect(
                list(frames), classes=config.classes, whole_frame=config.whole_frame
            )
        crops = [crop for det in detections for crop in det.data.get("crop", [])]
        with timer.stage("embed"):
            vectors = self.embedder_for(catalog.kind).embed(crops)
        frame_of = [f for f, det in enumerate(detections) for _ in range(len(det))]
        foreground = [box for det in detections for box in _foregrounds(det)]
        per_crop, rankings = self.match_vectors_ranked(
            vectors, crops, catalog, config, timer, frame_of, foreground
        )
        results, start = [], 0
        for det in detections:
            rows = slice(start, start + len(det))
            ranking = sum(rankings[rows], Ranking(config.rank_for(catalog.kind)))
            results.append(FrameResult(det, per_crop[rows], timer.seconds, ranking=ranking))
            start += len(det)
        return results

    def match_vectors(
        self,
        vectors: np.ndarray,
        crops: Sequence[np.ndarray],
        catalog: CatalogView,
        config: PipelineConfig,
        timer: Timer | None = None,
        frame_of: Sequence[int] | None = None,
    ) -> list[list[Match]]:
        """Search, verify and score crops whose embeddings are known.

        Args:
            vectors: float32 (N, D) embeddings of ``crops``.
            crops: N uint8 (h, w, 3) RGB crops (used for keypoints).
            frame_of: (N,) the frame each crop comes from (all one frame when None); at most
                ``config.verify_crops`` crops of each frame are verified.

        Returns:
            N lists of matches, best score first.
        """
        return self.match_vectors_ranked(vectors, crops, catalog, config, timer, frame_of)[0]

    def match_vectors_ranked(
        self,
        vectors: np.ndarray,
        crops: Sequence[np.ndarray],
        catalog: CatalogView,
        config: PipelineConfig,
        timer: Timer | None = None,
        frame_of: Sequence[int] | None = None,
        foreground: Sequence[np.ndarray | None] | None = None,
    ) -> tuple[list[list[Match]], list[Ranking]]:
        """`match_vectors`, with each crop's `Ranking`.

        Args:
            foreground: (N,) per crop, float (B, 4) xyxy boxes of the objects in crop pixels
                (a whole-frame crop: the frame's detections), or None: the crop is the object.
                Local ranking counts keypoint matches outside them for less.

        Returns:
            N lists of matches, best score first, and N rankings.
        """
        timer = timer or Timer()
        method = config.rank_for(catalog.kind)
        if len(vectors) == 0 or len(catalog.index) == 0:
            return [[] for _ in range(len(vectors))], [Ranking(method)] * len(vectors)
        local = method == "local" and config.verify and self.verifier is not None
        k = max(config.top_k, config.local_shortlist if local else config.shortlist)
        with timer.stage("search"):
            hits = catalog.index.search(vectors, k)
        # keypoints are the expensive stage: verify the crops whose best candidate is most
        # similar (the others keep their embedding ranking, nothing is dropped)
        frame_of = (
            np.zeros(len(crops), dtype=np.int64) if frame_of is None else np.asarray(frame_of)
        )
        best_sim = np.array(
            [hits.scores[r][0] if hits.item_ids[r] else -2.0 for r in range(len(crops))]
        )
        to_verify: set[int] = set()
        for frame in np.unique(frame_of):
            rows = np.flatnonzero(frame_of == frame)
            to_verify.update(rows[np.argsort(-best_sim[rows])][: config.verify_crops].tolist())
        calibration = self.calibration_for(catalog)[0]
        rankings = [Ranking(method)] * len(crops)
        evidence = {}
        if local:
            with timer.stage("verify"):
                evidence = self._rank_locally(
                    hits, crops, sorted(to_verify), catalog, config, calibration, foreground
                )
            for row, ev in evidence.items():
                rankings[row] = Ranking(
                    method, len(ev.compared), int(ev.compared.sum()), ev.partial
                )
        out = []
        for row, crop in enumerate(crops):
            items = hits.item_ids[row]
            sims = np.asarray(hits.scores[row][: len(items)], dtype=np.float32)
            best_images = [image_id_of(v) for v in hits.image_ids[row][: len(items)]]
            inliers: np.ndarray = np.zeros(len(items), dtype=np.int64)
            spread = np.zeros(len(items), dtype=np.float32)
            checked = np.zeros(len(items), dtype=bool)
            raw_inliers = inliers
            verify = config.verify and self.verifier is not None and row in to_verify
            if row in evidence:
                ev = evidence[row]
                inliers, raw_inliers, spread, checked = (
                    ev.inliers,
                    ev.raw_inliers,
                    ev.coverage,
                    ev.checked,
                )
            elif verify and config.shortlist > 0 and items:
                with timer.stage("verify"):
                    self._verify(
                        crop, items, best_images, catalog, config, inliers, spread, checked
                    )
                n = min(config.shortlist, len(items))
                rankings[row] = Ranking(method, n, n)
            feats = candidate_features(sims, inliers, spread, checked)
            scores = calibration.score(feats)
            matches = [
                Match(
                    item_id=items[i],
                    image_id=best_images[i],
                    similarity=float(sims[i]),
                    inliers=int(raw_inliers[i]),
                    spread=float(spread[i]),
                    checked=bool(checked[i]),
                    verified=bool(scores[i] >= calibration.threshold),
                    score=float(scores[i]),
                    evidence=float(inliers[i]) if row in evidence else None,
                )
                for i in range(len(items))
            ]
            matches.sort(key=lambda m: (-m.score, -m.similarity))
            out.append([m for m in matches if m.score >= config.min_score][: config.top_k])
        return out, rankings

    def _rank_locally(
        self,
        hits,
        crops: Sequence[np.ndarray],
        rows: Sequence[int],
        catalog: CatalogView,
        config: PipelineConfig,
        calibration: Calibration,
        foreground: Sequence[np.ndarray | None] | None,
    ) -> dict:
        """`matching.local_rank` evidence of the crops ``rows``: their keypoints extracted
        once (at up to ``config.query_max_side``), each candidate's best catalog image's
        cached keypoints, one deadline for the request."""
        assert self.verifier is not None
        deadline = Deadline(config.local_budget_s)
        jobs, kept = [], []
        for row in rows:
            items = hits.item_ids[row]
            if not items:
                continue
            n = min(config.local_shortlist, len(items))
            images = [image_id_of(v) for v in hits.image_ids[row][:n]]
            refs: list[LocalFeatures | None] = []
            for image_id in images:
                try:
                    refs.append(catalog.features.get(image_id))
                except NotFound:  # removed or re-indexed since this view was synced
                    log.warning("keypoints of catalog image %s are gone: not ranked", image_id)
                    refs.append(None)
            query = self.verifier.extract(crops[row], config.query_max_side)
            sims = np.asarray(hits.scores[row][:n], dtype=np.float64)
            fg = None if foreground is None else foreground[row]
            boxes = [catalog.boxes.get(image_id) for image_id in images]
            jobs.append(LocalJob(query, fg, sims, refs, boxes))
            kept.append(row)

        def scorer(sim, inl, spread, checked):
            return calibration.score(candidate_features(sim, inl, spread, checked))

        found = rank_locally(
            jobs,
            self.verifier.match_many,
            scorer,
            config.local,
            deadline,
            geometry=self.verifier.verify_matches,
        )
        out = {}
        for row, ev in zip(kept, found, strict=True):
            total = len(hits.item_ids[row])  # beyond the shortlist: nothing to add
            pad = total - len(ev.compared)
            if pad > 0:
                ev.inliers = np.concatenate([ev.inliers, np.zeros(pad)])
                ev.raw_inliers = np.concatenate([ev.raw_inliers, np.zeros(pad, np.int64)])
                ev.coverage = np.concatenate([ev.coverage, np.zeros(pad)])
                ev.checked = np.concatenate([ev.checked, np.zeros(pad, bool)])
                ev.refined = np.concatenate([ev.refined, np.zeros(pad, bool)])
            out[row] = ev
        return out

    def _verify(
        self,
        crop: np.ndarray,
        items: list[str],
        best_images: list[str],
        catalog: CatalogView,
        config: PipelineConfig,
        inliers: np.ndarray,
        spread: np.ndarray,
        checked: np.ndarray,
    ) -> None:
        """Keypoint-match a crop against its shortlist; fills ``inliers``, ``spread`` and
        ``checked`` (candidates with at least one catalog image's keypoints compared)."""
        assert self.verifier is not None
        query = self.verifier.extract(crop)
        refs: list[LocalFeatures] = []
        owner: list[int] = []
        for i in range(min(config.shortlist, len(items))):
            images = [best_images[i]] + [
                im for im in catalog.images_of.get(items[i], []) if im != best_images[i]
            ]
            for image_id in images[: config.refs_per_item]:
                try:
                    refs.append(catalog.features.get(image_id))
                except NotFound:  # removed or re-indexed since this view was synced
                    log.warning("keypoints of catalog image %s are gone: not verified", image_id)
                    continue
                owner.append(i)
                checked[i] = True
        for i, result in zip(owner, self.verifier.match_many(query, refs), strict=True):
            if result.inliers > inliers[i]:
                inliers[i] = result.inliers
                spread[i] = result.spread


def _foregrounds(det) -> list[np.ndarray | None]:
    """Per detection, the object's boxes in its crop's pixels: None for a detected object (the
    crop is the object); for the whole-frame row, the frame's other detections (None when it
    has none: the whole photo is the object)."""
    whole = det.class_id == WHOLE_FRAME_CLASS_ID
    objects = det.xyxy[~whole]
    return [
        (objects.astype(np.float64) if len(objects) else None) if is_whole else None
        for is_whole in whole
    ]

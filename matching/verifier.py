"""Keypoint verification: local features + a learned matcher + RANSAC homography (kornia, OpenCV).

The types (`VerifierConfig`, `MatchResult`), the `VerifierBackend` protocol and the `Verifier`
that every backend shares: it checks the images, lets the backend extract and match, and fits
the homography. Three backends (`matching.backends`), chosen by name (the ``verifier`` models
of `weights.MODELS`) in `matching.verification`, the one place verifiers are loaded:

- ``aliked_lightglue``: ALIKED-n16 keypoints + LightGlue (the fast path offline);
- ``disk_lightglue``: DISK keypoints + LightGlue;
- ``loftr``: detector-free LoFTR (the design default); its cacheable "features" of an image
  are the preprocessed grayscale image (`LocalFeatures.dense`).

Usage::

    verifier = verifier_from_weights("aliked_lightglue", [aliked_path, lightglue_path], "cpu")
    ref = verifier.extract(catalog_rgb)          # cached per catalog image (ref.to_bytes())
    result = verifier.match(verifier.extract(crop_rgb), ref)
    result.inliers, result.spread, result.homography
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from core.errors import BadInput
from core.images import check_rgb
from matching.features import LocalFeatures
from matching.geometry import find_homography, hull_coverage, is_plausible_homography


@dataclass(frozen=True)
class VerifierConfig:
    """Knobs of keypoint verification (defaults measured on 2 CPU cores, see the report)."""

    # long side (px) an image is shrunk to before extraction; never enlarged. Grocery photos
    # (348 px) and catalog images (198 px) pass unchanged; 512 keeps ALIKED ~100 ms on 2 cores.
    max_side: int = 512
    # most keypoints kept per image (ALIKED/DISK); LightGlue cost grows ~quadratically with it.
    max_keypoints: int = 512
    # ALIKED score a keypoint must exceed; <= 0 = top-k mode (the max_keypoints strongest
    # local maxima, whatever their score), which keeps enough points on small, flat crops.
    detection_threshold: float = 0.0
    # ALIKED: drop keypoints scoring below this. Top-k mode keeps maxima of any score, and a
    # flat (blank) image scores ~0.002 everywhere; real texture scores 0.05-0.9.
    min_score: float = 0.01
    # LightGlue early stopping: stop when this share of points is confident (-1 disables).
    depth_confidence: float = 0.95
    # LightGlue point pruning: drop points confidently unmatchable (-1 disables).
    width_confidence: float = 0.99
    # LightGlue: smallest match probability kept as a match.
    filter_threshold: float = 0.1
    # robust estimator of cv2.findHomography (USAC MAGSAC++).
    ransac_method: int = cv2.USAC_MAGSAC
    # largest reprojection error (px) of an inlier, in the reference image at max_side scale
    # (multiplied by the reference's own downscale factor, so it is resolution-independent).
    ransac_threshold: float = 4.0
    # RANSAC confidence and iteration cap.
    ransac_confidence: float = 0.999
    ransac_max_iters: int = 2000
    # fewest inliers for which the homography is reported (below it: homography None).
    min_inliers: int = 8
    # largest area ratio (or its inverse) a plausible homography may have; mirroring and
    # collapsing homographies are rejected (inliers 0).
    max_homography_scale: float = 20.0
    # images per extraction batch and reference pairs per matcher batch (same-size groups).
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.max_keypoints < 4:
            raise BadInput(f"max_keypoints must be >= 4, got {self.max_keypoints}")
        if self.ransac_threshold <= 0 or not 0 < self.ransac_confidence < 1:
            raise BadInput("ransac_threshold must be > 0 and ransac_confidence in (0, 1)")
        if self.min_inliers < 4 or self.batch_size < 1:
            raise BadInput("min_inliers must be >= 4 and batch_size >= 1")

    def extraction_key(self) -> str:
        """A short hash of the knobs that change extracted features (part of the fingerprint)."""
        knobs = f"{self.max_side}|{self.max_keypoints}|{self.detection_threshold}|{self.min_score}"
        return hashlib.sha256(knobs.encode()).hexdigest()[:8]


@dataclass(frozen=True, eq=False)
class MatchResult:
    """Geometric verification of one (query, reference) pair.

    Attributes:
        inliers: RANSAC inliers of the homography (0 when none or implausible).
        matches: tentative matches from the matcher, M.
        inlier_ratio: inliers / matches (0 when no matches).
        spread: share of the reference image covered by the convex hull of the inliers, [0, 1].
        homography: float64 (3, 3) mapping query pixels to reference pixels (original images),
            or None when fewer than ``min_inliers`` inliers.
        query_points: float32 (M, 2) matched points, x, y in the original query image.
        ref_points: float32 (M, 2) matched points, x, y in the original reference image.
        inlier_mask: bool (M,).
        match_scores: float32 (M,) matcher confidence of each match.
    """

    inliers: int
    matches: int
    inlier_ratio: float
    spread: float
    homography: np.ndarray | None
    query_points: np.ndarray
    ref_points: np.ndarray
    inlier_mask: np.ndarray
    match_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        q = np.asarray(self.query_points, np.float32).reshape(-1, 2)
        r = np.asarray(self.ref_points, np.float32).reshape(-1, 2)
        mask = np.asarray(self.inlier_mask, bool).reshape(-1)
        m = len(q)
        scores = np.asarray(self.match_scores, np.float32).reshape(-1)
        if len(scores) == 0 and m:
            scores = np.ones(m, np.float32)
        if len(r) != m or len(mask) != m or len(scores) != m:
            raise ValueError(
                f"query_points {q.shape}, ref_points {r.shape}, inlier_mask {mask.shape} and "
                f"match_scores {scores.shape} must all have M={m} rows"
            )
        if self.homography is not None and np.shape(self.homography) != (3, 3):
            raise ValueError(f"homography must be (3, 3), got {np.shape(self.homography)}")
        object.__setattr__(self, "query_points", q)
        object.__setattr__(self, "ref_points", r)
        object.__setattr__(self, "inlier_mask", mask)
        object.__setattr__(self, "match_scores", scores)

    def resized(
        self,
        query_size: tuple[int, int],
        query_to: tuple[int, int],
        ref_size: tuple[int, int],
        ref_to: tuple[int, int],
    ) -> MatchResult:
        """The result with its points moved from images of ``(h, w)`` sizes to resized ones.

        Args:
            query_size: (h, w) of the query image the points are in; query_to: its new size.
            ref_size: (h, w) of the reference image the points are in; ref_to: its new size.

        Returns:
            The same result when nothing moves; else a copy with moved points (pixel centres
            kept at integer coordinates) and no homography (it would need the same rescaling).
        """
        if self.matches == 0 or (tuple(query_size), tuple(ref_size)) == (
            tuple(query_to),
            tuple(ref_to),
        ):
            return self

        def move(points: np.ndarray, size: tuple[int, int], to: tuple[int, int]) -> np.ndarray:
            factor = np.array([to[1] / size[1], to[0] / size[0]], np.float32)
            return (points + 0.5) * factor - 0.5

        return dataclasses.replace(
            self,
            homography=None,
            query_points=move(self.query_points, query_size, query_to),
            ref_points=move(self.ref_points, ref_size, ref_to),
        )

    @classmethod
    def empty(cls) -> MatchResult:
        """No matches: zero counts, no homography, (0, 2) points."""
        return cls(
            0,
            0,
            0.0,
            0.0,
            None,
            np.zeros((0, 2), np.float32),
            np.zeros((0, 2), np.float32),
            np.zeros(0, bool),
            np.zeros(0, np.float32),
        )


#: One reference's matches in original pixels: query points float32 (M, 2), reference points
#: float32 (M, 2), matcher confidence float32 (M,).
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


class VerifierBackend(Protocol):
    """One kind of local-feature matcher (`matching.backends`), in original-image pixels.

    Built without weights (``build(name, config)``), then ``load_weights(files)``.
    """

    name: str
    config: VerifierConfig  # the extraction and matching knobs (the verifier's own)

    def load_weights(self, files: Sequence[Path]) -> None:
        """Load the backend's files, in registry order; `ModelUnavailable` when they do not fit."""
        ...

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the modules to ``device`` and ``dtype``, in eval mode."""
        ...

    def extract(
        self, images: Sequence[np.ndarray], max_side: int | None = None
    ) -> list[LocalFeatures]:
        """Features of checked uint8 (H, W, 3) RGB images, one per image, each shrunk to
        ``max_side`` on its long side first (default: the config's)."""
        ...

    def match(self, query: LocalFeatures, refs: Sequence[LocalFeatures]) -> list[Pairs]:
        """Matches of one query with each reference (M may be 0); `BadInput` for features of
        another backend."""
        ...


# --------------------------------------------------------------------------------------------
# the verifier
# --------------------------------------------------------------------------------------------


class Verifier:
    """Extracts local features and verifies (query, reference) pairs geometrically.

    The backend extracts and matches; the verifier checks the images and fits the homography,
    the same for every backend.

    Attributes:
        name: the verifier model name (``aliked_lightglue``, ``disk_lightglue``, ``loftr``).
        fingerprint: name + sha256 prefix of the weight files + extraction knobs; catalogs store
            it with cached features and recompute them when it changes.
        config: the backend's `VerifierConfig` (RANSAC knobs too).
        device: torch device the models run on (half precision on CUDA).
        backend: the `VerifierBackend`.
    """

    def __init__(
        self,
        name: str,
        backend: VerifierBackend,
        *,
        device: str | torch.device = "cpu",
        fingerprint: str = "",
    ) -> None:
        self.name = name
        self.config = backend.config
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.fingerprint = fingerprint or f"{name}-unloaded"
        self.backend = backend
        backend.to(self.device, self.dtype)

    # ---- extraction --------------------------------------------------------------------------

    def extract(self, image: np.ndarray, max_side: int | None = None) -> LocalFeatures:
        """Local features of one image.

        Args:
            image: uint8 (H, W, 3) RGB.
            max_side: long side it is shrunk to first (default: ``config.max_side``; the
                query side of local ranking keeps finer patterns with a larger one).

        Returns:
            `LocalFeatures` in original pixels (dense for LoFTR); empty for a featureless image.
        """
        return self.extract_batch([image], max_side)[0]

    @torch.inference_mode()
    def extract_batch(
        self, images: Sequence[np.ndarray], max_side: int | None = None
    ) -> list[LocalFeatures]:
        """Local features of several images; images of equal size after resizing share a batch.

        Args:
            images: each uint8 (H, W, 3) RGB.
            max_side: long side they are shrunk to first (default: ``config.max_side``).

        Returns:
            One `LocalFeatures` per image, in order.

        Raises:
            BadInput: an image that is not uint8 (H, W, 3).
        """
        for image in images:
            check_rgb(image)
        return self.backend.extract(images, max_side)

    # ---- matching ----------------------------------------------------------------------------

    def match(self, query: LocalFeatures, ref: LocalFeatures) -> MatchResult:
        """Verify one pair: matcher, then a USAC/MAGSAC homography query -> reference.

        Args:
            query: features of the query crop (from `extract`).
            ref: features of the reference (catalog) image.

        Returns:
            `MatchResult`; `MatchResult.empty()` when fewer than 4 matches.
        """
        return self.match_many(query, [ref])[0]

    @torch.inference_mode()
    def match_many(self, query: LocalFeatures, refs: Sequence[LocalFeatures]) -> list[MatchResult]:
        """Verify one query against several references.

        LightGlue runs references with equal keypoint counts as one batch (one pass on a GPU;
        on the CPU kornia runs pruned pairs one by one); LoFTR computes the query's backbone
        features once per batch.

        Args:
            query: features of the query.
            refs: features of each reference.

        Returns:
            One `MatchResult` per reference, in order.

        Raises:
            BadInput: features of another backend (keypoints for LoFTR, dense for LightGlue).
        """
        pairs = self.backend.match(query, refs)
        return [
            self.verify_matches(q_pts, r_pts, scores, ref)
            for (q_pts, r_pts, scores), ref in zip(pairs, refs, strict=True)
        ]

    def verify_matches(
        self, q_pts: np.ndarray, r_pts: np.ndarray, scores: np.ndarray, ref: LocalFeatures
    ) -> MatchResult:
        """RANSAC on matched points (original pixels; from the matcher, or any other
        correspondences such as mutual nearest descriptors) -> MatchResult.

        Args:
            q_pts, r_pts: float32 (M, 2) matched points in the query and the reference.
            scores: float (M,) each match's confidence.
            ref: the reference's features (its image size scales the RANSAC threshold).
        """
        m = len(q_pts)
        if m < 4:
            return MatchResult.empty()
        cfg = self.config
        ref_scale = max(ref.image_size) / min(max(ref.image_size), max(cfg.max_side, 1))
        if cfg.max_side <= 0:
            ref_scale = 1.0
        h, mask = find_homography(
            q_pts,
            r_pts,
            method=cfg.ransac_method,
            threshold=cfg.ransac_threshold * ref_scale,
            confidence=cfg.ransac_confidence,
            max_iters=cfg.ransac_max_iters,
        )
        if h is not None and not is_plausible_homography(h, cfg.max_homography_scale):
            h, mask = None, np.zeros(m, bool)
        inliers = int(mask.sum())
        if inliers < cfg.min_inliers:
            h = None
        return MatchResult(
            inliers=inliers,
            matches=m,
            inlier_ratio=inliers / m,
            spread=hull_coverage(r_pts[mask], ref.image_size),
            homography=h,
            query_points=q_pts,
            ref_points=r_pts,
            inlier_mask=mask,
            match_scores=scores,
        )

    def describe(self) -> dict:
        """Name, fingerprint, device and knobs, for logs and benchmark reports."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "device": str(self.device),
            **asdict(self.config),
        }

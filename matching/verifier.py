"""Keypoint verification: local features + a learned matcher + RANSAC homography (kornia, OpenCV).

Three verifiers, chosen by name (the ``verifier`` models of `weights.MODELS`):

- ``aliked_lightglue``: ALIKED-n16 keypoints + LightGlue (the fast path offline);
- ``disk_lightglue``: DISK keypoints + LightGlue;
- ``loftr``: detector-free LoFTR (the design default); its cacheable "features" of an image
  are the preprocessed grayscale image (`LocalFeatures.dense`).

Usage::

    verifier = Verifier.from_weights("aliked_lightglue", [aliked_path, lightglue_path], "cpu")
    ref = verifier.extract(catalog_rgb)          # cached per catalog image (ref.to_bytes())
    result = verifier.match(verifier.extract(crop_rgb), ref)
    result.inliers, result.spread, result.homography

Modules are built without weights (nothing touches the network or disk), then
`Verifier.from_weights` loads the files and calls ``.eval()``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from kornia.feature import ALIKED, DISK, LightGlue, LoFTR
from torch import nn

from core.errors import BadInput, ModelUnavailable
from matching.features import LocalFeatures
from matching.geometry import (
    find_homography,
    hull_coverage,
    is_plausible_homography,
    resize_long_side,
    to_original,
)
from weights.registry import MODELS, sha256_of

log = logging.getLogger(__name__)

#: Descriptor dimension of each sparse verifier's extractor.
DESCRIPTOR_DIM = {"aliked_lightglue": 128, "disk_lightglue": 128}
VERIFIERS = ("aliked_lightglue", "disk_lightglue", "loftr")


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


# --------------------------------------------------------------------------------------------
# backends: one per kind of matcher; each works in original-image pixels
# --------------------------------------------------------------------------------------------


def _to_tensor(images: Sequence[np.ndarray], device: torch.device, dtype: torch.dtype):
    """uint8 (h, w, C) or (h, w) images of one size -> float (B, C, h, w) in [0, 1]."""
    arr = np.stack(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    t = torch.from_numpy(arr).to(device).permute(0, 3, 1, 2)
    return t.to(dtype).div_(255.0)


class _SparseBackend:
    """ALIKED or DISK keypoints + LightGlue."""

    def __init__(
        self, kind: str, extractor: nn.Module, matcher: LightGlue, config: VerifierConfig
    ) -> None:
        self.kind = kind
        self.extractor = extractor
        self.matcher = matcher
        self.config = config

    def extract(self, batch: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """float (B, 3, h, w) -> per image (keypoints (K, 2), descriptors (K, D), scores (K,))."""
        if self.kind == "disk":
            feats = self.extractor(batch, n=self.config.max_keypoints, pad_if_not_divisible=True)
            return [(f.keypoints, f.descriptors, f.detection_scores) for f in feats]
        out = []
        for f in self.extractor(batch):
            keep = f.keypoint_scores >= self.config.min_score
            out.append((f.keypoints[keep], f.descriptors[keep], f.keypoint_scores[keep]))
        return out

    def match(
        self, query: LocalFeatures, refs: Sequence[LocalFeatures], device: torch.device
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Match one query against refs of equal K; per ref (q_idx, r_idx, scores)."""
        dtype = next(self.matcher.parameters()).dtype
        b = len(refs)

        def side(feats: Sequence[LocalFeatures]) -> dict[str, torch.Tensor]:
            kpts = torch.from_numpy(np.stack([f.keypoints for f in feats])).to(device)
            desc = torch.from_numpy(np.stack([f.descriptors for f in feats])).to(device, dtype)
            size = torch.tensor([[f.image_size[1], f.image_size[0]] for f in feats], device=device)
            return {"keypoints": kpts, "descriptors": desc, "image_size": size.float()}

        out = self.matcher({"image0": side([query] * b), "image1": side(refs)})
        results = []
        for k in range(b):
            idx = out["matches"][k].cpu().numpy()
            scores = out["scores"][k].float().cpu().numpy()
            results.append((idx[:, 0], idx[:, 1], scores))
        return results


class _LoftrBackend:
    """Detector-free LoFTR on preprocessed grayscale images."""

    def __init__(self, model: LoFTR) -> None:
        self.model = model

    def match(
        self, query: LocalFeatures, refs: Sequence[LocalFeatures], device: torch.device
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per ref: (query points (M, 2), ref points (M, 2), confidence (M,)), original pixels."""
        dtype = next(self.model.parameters()).dtype
        q_img = _to_tensor([query.image], device, dtype)
        q_feats = self.model.extract_features(q_img)
        out = []
        for ref in refs:
            r_img = _to_tensor([ref.image], device, dtype)
            res = self.model({"features0": q_feats, "image1": r_img})
            # LoFTR's frame puts pixel centres at +0.5: move to integer centres, then rescale
            q_pts = res["keypoints0"].float().cpu().numpy() - 0.5
            r_pts = res["keypoints1"].float().cpu().numpy() - 0.5
            out.append(
                (
                    to_original(q_pts, _dense_scale(query)),
                    to_original(r_pts, _dense_scale(ref)),
                    res["confidence"].float().cpu().numpy(),
                )
            )
        return out


def _dense_scale(f: LocalFeatures) -> tuple[float, float]:
    """(sx, sy) from a dense feature's stored image back to its original image."""
    h, w = f.image.shape
    return f.image_size[1] / w, f.image_size[0] / h


# --------------------------------------------------------------------------------------------
# building modules (no disk, no network) and loading weights
# --------------------------------------------------------------------------------------------


def build_modules(name: str, config: VerifierConfig) -> dict[str, nn.Module]:
    """Randomly initialised modules of a verifier, by role; touches no disk or network.

    Returns:
        ``{"extractor": ..., "matcher": ...}`` for LightGlue verifiers, ``{"loftr": ...}``.

    Raises:
        ModelUnavailable: unknown verifier name.
    """
    if name == "loftr":
        return {"loftr": LoFTR(pretrained=None)}
    if name not in DESCRIPTOR_DIM:
        raise ModelUnavailable(f"unknown verifier {name!r}; known: {', '.join(VERIFIERS)}")
    kind = name.split("_")[0]
    if kind == "aliked":
        extractor: nn.Module = ALIKED(
            "aliked-n16",
            max_num_keypoints=config.max_keypoints,
            detection_threshold=config.detection_threshold,
        )
    else:
        extractor = DISK()
    # features=None builds from the configuration alone and downloads nothing; weights=None
    # keeps kornia from reading a bundled file.
    conf = {
        **LightGlue.features[kind],
        "weights": None,
        "depth_confidence": config.depth_confidence,
        "width_confidence": config.width_confidence,
        "filter_threshold": config.filter_threshold,
    }
    return {"extractor": extractor, "matcher": LightGlue(None, **conf)}


def _load_file(path: Path) -> dict:
    if not Path(path).is_file():
        raise ModelUnavailable(f"model file {path} does not exist")
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise ModelUnavailable(f"model file {path} cannot be read: {exc}") from None
    if not isinstance(data, Mapping):
        raise ModelUnavailable(f"model file {path} holds {type(data).__name__}, not a state dict")
    return dict(data)


def _lightglue_state(sd: dict, n_layers: int) -> dict:
    """Rename the cvg/LightGlue release layout (``self_attn.{i}``) to kornia's, as kornia does."""
    out = {}
    for key, value in sd.items():
        for i in range(n_layers):
            key = key.replace(f"self_attn.{i}.", f"transformers.{i}.self_attn.")
            key = key.replace(f"cross_attn.{i}.", f"transformers.{i}.cross_attn.")
        out[key] = value
    return out


#: Buffers a module derives itself, absent from the official files.
_DERIVED = ("dkd.hw_grid", "confidence_thresholds")


def _load_into(module: nn.Module, sd: dict, path: Path) -> None:
    """load_state_dict that tolerates only missing derived buffers; else ModelUnavailable.

    Extra keys are ignored, as kornia does (the DISK LightGlue release carries obsolete
    ``log_assignment.{i}.r`` entries); a file of another model misses keys and is refused.
    """
    try:
        res = module.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ModelUnavailable(f"model file {path} does not fit the model: {exc}") from None
    missing = [k for k in res.missing_keys if not k.endswith(_DERIVED)]
    if missing:
        raise ModelUnavailable(
            f"model file {path} does not fit the model: {len(missing)} tensors missing, "
            f"e.g. {missing[:3]}"
        )
    if res.unexpected_keys:
        log.debug("%s: ignored %d unexpected keys", path, len(res.unexpected_keys))


def _ordered_paths(name: str, paths: Mapping[str, Path] | Sequence[Path]) -> list[Path]:
    """The files of a verifier in registry order (extractor first, then matcher)."""
    spec = MODELS.get(name)
    if spec is None or spec.stage != "verifier":
        raise ModelUnavailable(f"unknown verifier {name!r}; known: {', '.join(VERIFIERS)}")
    if isinstance(paths, Mapping):
        missing = [f for f in spec.files if f not in paths]
        if missing:
            raise ModelUnavailable(f"verifier {name} needs files {missing}; got {list(paths)}")
        return [Path(paths[f]) for f in spec.files]
    if len(paths) != len(spec.files):
        raise ModelUnavailable(f"verifier {name} needs {len(spec.files)} files {spec.files}")
    return [Path(p) for p in paths]


def _fingerprint(name: str, files: Sequence[Path], config: VerifierConfig) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(sha256_of(path).encode())
    return f"{name}-{digest.hexdigest()[:12]}-{config.extraction_key()}"


# --------------------------------------------------------------------------------------------
# the verifier
# --------------------------------------------------------------------------------------------


class Verifier:
    """Extracts local features and verifies (query, reference) pairs geometrically.

    Attributes:
        name: the verifier model name (``aliked_lightglue``, ``disk_lightglue``, ``loftr``).
        fingerprint: name + sha256 prefix of the weight files + extraction knobs; catalogs store
            it with cached features and recompute them when it changes.
        config: the `VerifierConfig`.
        device: torch device the models run on (half precision on CUDA).
    """

    def __init__(
        self,
        name: str,
        modules: dict[str, nn.Module],
        *,
        config: VerifierConfig | None = None,
        device: str | torch.device = "cpu",
        fingerprint: str = "",
    ) -> None:
        self.name = name
        self.config = config or VerifierConfig()
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.fingerprint = fingerprint or f"{name}-unloaded"
        for module in modules.values():
            module.to(self.device, self.dtype).eval()
        if name == "loftr":
            self._sparse: _SparseBackend | None = None
            self._loftr: _LoftrBackend | None = _LoftrBackend(modules["loftr"])
        else:
            kind = name.split("_")[0]
            self._sparse = _SparseBackend(
                kind, modules["extractor"], modules["matcher"], self.config
            )
            self._loftr = None

    @classmethod
    def from_weights(
        cls,
        name: str,
        paths: Mapping[str, Path] | Sequence[Path],
        device: str | torch.device = "cpu",
        config: VerifierConfig | None = None,
    ) -> Verifier:
        """Build a verifier and load its weight files.

        Args:
            name: ``aliked_lightglue``, ``disk_lightglue`` or ``loftr``.
            paths: the files, keyed by registry file name (``{"aliked-n16.pth": ...}``) or in
                registry order (extractor, then matcher; LoFTR: one checkpoint whose state dict
                may be wrapped in ``{"state_dict": ...}`` as kornia's files are).
            device: ``cpu`` or ``cuda``.
            config: knobs; defaults to `VerifierConfig()`.

        Raises:
            ModelUnavailable: unknown name, missing, unreadable or mismatching file.
        """
        config = config or VerifierConfig()
        files = _ordered_paths(name, paths)
        modules = build_modules(name, config)
        if name == "loftr":
            sd = _load_file(files[0])
            sd = dict(sd.get("state_dict", sd))
            sd = {k.removeprefix("matcher."): v for k, v in sd.items()}
            _load_into(modules["loftr"], sd, files[0])
        else:
            extractor_sd = _load_file(files[0])
            if name == "disk_lightglue":
                extractor_sd = extractor_sd.get("extractor", extractor_sd)
            _load_into(modules["extractor"], extractor_sd, files[0])
            matcher = modules["matcher"]
            matcher_sd = _lightglue_state(_load_file(files[1]), matcher.conf.n_layers)
            _load_into(matcher, matcher_sd, files[1])
        return cls(
            name,
            modules,
            config=config,
            device=device,
            fingerprint=_fingerprint(name, files, config),
        )

    # ---- extraction --------------------------------------------------------------------------

    def extract(self, image: np.ndarray) -> LocalFeatures:
        """Local features of one image.

        Args:
            image: uint8 (H, W, 3) RGB.

        Returns:
            `LocalFeatures` in original pixels (dense for LoFTR); empty for a featureless image.
        """
        return self.extract_batch([image])[0]

    @torch.inference_mode()
    def extract_batch(self, images: Sequence[np.ndarray]) -> list[LocalFeatures]:
        """Local features of several images; images of equal size after resizing share a batch.

        Args:
            images: each uint8 (H, W, 3) RGB.

        Returns:
            One `LocalFeatures` per image, in order.
        """
        smalls = []
        for image in images:
            _check_image(image)
            if self._loftr is not None:
                gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
                smalls.append(resize_long_side(gray, self.config.max_side))
            else:
                smalls.append(resize_long_side(image, self.config.max_side))
        if self._loftr is not None:
            return [
                LocalFeatures.dense(small, image.shape[:2])
                for (small, _), image in zip(smalls, images, strict=True)
            ]
        out: list[LocalFeatures | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (small, _) in enumerate(smalls):
            groups.setdefault(small.shape, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.config.batch_size):
                chunk = idx[start : start + self.config.batch_size]
                batch = _to_tensor([smalls[i][0] for i in chunk], self.device, self.dtype)
                for i, (kpts, desc, scores) in zip(chunk, self._sparse.extract(batch), strict=True):
                    out[i] = LocalFeatures(
                        to_original(kpts.float().cpu().numpy(), smalls[i][1]),
                        desc.float().cpu().numpy(),
                        scores.float().cpu().numpy(),
                        images[i].shape[:2],
                    )
        return out  # type: ignore[return-value]

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
        features once.

        Args:
            query: features of the query.
            refs: features of each reference.

        Returns:
            One `MatchResult` per reference, in order.
        """
        results = [MatchResult.empty() for _ in refs]
        if self._loftr is not None:
            if not query.is_dense:
                raise BadInput("LoFTR needs dense features (from a loftr Verifier's extract)")
            todo = [i for i, r in enumerate(refs) if r.is_dense]
            if len(todo) != len(refs):
                raise BadInput("LoFTR needs dense reference features; recompute them")
            for start in range(0, len(todo), self.config.batch_size):
                chunk = todo[start : start + self.config.batch_size]
                pairs = self._loftr.match(query, [refs[i] for i in chunk], self.device)
                for i, (q, r, s) in zip(chunk, pairs, strict=True):
                    results[i] = self._verify(q, r, s, refs[i])
            return results
        if query.is_dense or any(r.is_dense for r in refs):
            raise BadInput(f"{self.name} needs keypoint features, not dense LoFTR features")
        if len(query) < 4:
            return results
        groups: dict[int, list[int]] = {}
        for i, ref in enumerate(refs):
            if len(ref) >= 4:
                groups.setdefault(len(ref), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.config.batch_size):
                chunk = idx[start : start + self.config.batch_size]
                pairs = self._sparse.match(query, [refs[i] for i in chunk], self.device)
                for i, (qi, ri, s) in zip(chunk, pairs, strict=True):
                    results[i] = self._verify(
                        query.keypoints[qi], refs[i].keypoints[ri], s, refs[i]
                    )
        return results

    def _verify(
        self, q_pts: np.ndarray, r_pts: np.ndarray, scores: np.ndarray, ref: LocalFeatures
    ) -> MatchResult:
        """RANSAC on matched points (original pixels) -> MatchResult."""
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


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BadInput(f"image must be a uint8 array, got {getattr(image, 'dtype', type(image))}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) <= 0:
        raise BadInput(f"image must be (H, W, 3) RGB, got {image.shape}")

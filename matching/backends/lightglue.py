"""ALIKED or DISK keypoints + LightGlue (kornia): the ``aliked_lightglue``/``disk_lightglue``
verifiers.

Features are keypoints ``(K, 2)`` in original pixels with descriptors ``(K, 128)``; references
with equal K are matched as one LightGlue batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from kornia.feature import ALIKED, DISK, LightGlue
from torch import nn

from core.errors import BadInput, ModelUnavailable
from matching.backends import images_to_tensor
from matching.features import LocalFeatures
from matching.geometry import resize_long_side, to_original
from matching.verifier import Pairs, VerifierConfig
from weights.checkpoint import fit_state_dict, load_state_dict

#: The keypoint extractor of each verifier name (kornia's ``LightGlue.features`` key).
EXTRACTORS = {"aliked_lightglue": "aliked", "disk_lightglue": "disk"}

#: Buffers a module derives itself, absent from the official files (ALIKED, LightGlue).
DERIVED = ("dkd.hw_grid", "confidence_thresholds")


def _no_pairs() -> Pairs:
    return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.float32)


def _lightglue_state(sd: dict, n_layers: int) -> dict:
    """Rename the cvg/LightGlue release layout (``self_attn.{i}``) to kornia's, as kornia does."""
    out = {}
    for key, value in sd.items():
        for i in range(n_layers):
            key = key.replace(f"self_attn.{i}.", f"transformers.{i}.self_attn.")
            key = key.replace(f"cross_attn.{i}.", f"transformers.{i}.cross_attn.")
        out[key] = value
    return out


class LightGlueBackend:
    """ALIKED or DISK keypoints + LightGlue.

    Attributes:
        name: ``aliked_lightglue`` or ``disk_lightglue``.
        kind: ``aliked`` or ``disk``.
        extractor: the keypoint extractor module.
        matcher: the LightGlue module.
        config: the `VerifierConfig`.
    """

    def __init__(
        self, name: str, extractor: nn.Module, matcher: LightGlue, config: VerifierConfig
    ) -> None:
        self.name = name
        self.kind = EXTRACTORS[name]
        self.extractor = extractor
        self.matcher = matcher
        self.config = config
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    @classmethod
    def build(cls, name: str, config: VerifierConfig) -> LightGlueBackend:
        """Randomly initialised modules; touches no disk or network.

        Raises:
            ModelUnavailable: not a LightGlue verifier name.
        """
        kind = EXTRACTORS.get(name)
        if kind is None:
            raise ModelUnavailable(f"{name!r} is not a LightGlue verifier: {', '.join(EXTRACTORS)}")
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
        return cls(name, extractor, LightGlue(None, **conf), config)

    def load_weights(self, files: Sequence[Path]) -> None:
        """Load the extractor's file, then LightGlue's (the official releases' layouts).

        Extra keys are ignored, as kornia does (the DISK LightGlue release carries obsolete
        ``log_assignment.{i}.r`` entries); a file of another model misses keys and is refused.

        Raises:
            ModelUnavailable: a missing, unreadable or mismatching file.
        """
        extractor_file, matcher_file = files
        # DISK's release wraps its state dict as {"extractor": ...}
        extractor_sd = load_state_dict(extractor_file, key="extractor")
        fit_state_dict(
            self.extractor,
            extractor_sd,
            extractor_file,
            f"the {self.kind} extractor",
            derived=DERIVED,
            allow_unexpected=True,
        )
        matcher_sd = _lightglue_state(load_state_dict(matcher_file), self.matcher.conf.n_layers)
        fit_state_dict(
            self.matcher,
            matcher_sd,
            matcher_file,
            "LightGlue",
            derived=DERIVED,
            allow_unexpected=True,
        )

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the modules to ``device`` and ``dtype``, in eval mode."""
        self.device, self.dtype = device, dtype
        for module in (self.extractor, self.matcher):
            module.to(device, dtype).eval()

    def extract(
        self, images: Sequence[np.ndarray], max_side: int | None = None
    ) -> list[LocalFeatures]:
        """Keypoints of each image; images of equal size after resizing share a batch.

        Args:
            images: each uint8 (H, W, 3) RGB (checked by the `Verifier`).
            max_side: long side images are shrunk to (default: the config's ``max_side``).

        Returns:
            One `LocalFeatures` per image, keypoints in original pixels; empty (K = 0) for a
            featureless image.
        """
        side = self.config.max_side if max_side is None else max_side
        smalls = [resize_long_side(image, side) for image in images]
        out: list[LocalFeatures | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (small, _) in enumerate(smalls):
            groups.setdefault(small.shape, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.config.batch_size):
                chunk = idx[start : start + self.config.batch_size]
                batch = images_to_tensor([smalls[i][0] for i in chunk], self.device, self.dtype)
                for i, (kpts, desc, scores) in zip(chunk, self._keypoints(batch), strict=True):
                    out[i] = LocalFeatures(
                        to_original(kpts.float().cpu().numpy(), smalls[i][1]),
                        desc.float().cpu().numpy(),
                        scores.float().cpu().numpy(),
                        images[i].shape[:2],
                    )
        return out  # type: ignore[return-value]

    def _keypoints(self, batch: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """float (B, 3, h, w) -> per image (keypoints (K, 2), descriptors (K, D), scores (K,))."""
        if self.kind == "disk":
            feats = self.extractor(batch, n=self.config.max_keypoints, pad_if_not_divisible=True)
            return [(f.keypoints, f.descriptors, f.detection_scores) for f in feats]
        out = []
        for f in self.extractor(batch):
            keep = f.keypoint_scores >= self.config.min_score
            out.append((f.keypoints[keep], f.descriptors[keep], f.keypoint_scores[keep]))
        return out

    def match(self, query: LocalFeatures, refs: Sequence[LocalFeatures]) -> list[Pairs]:
        """Match one query against each reference; references of equal K share a batch (one
        pass on a GPU; on the CPU kornia runs pruned pairs one by one).

        Returns:
            Per reference (query points (M, 2), ref points (M, 2), scores (M,)) in original
            pixels; M = 0 when either side has fewer than 4 keypoints.

        Raises:
            BadInput: dense (LoFTR) features.
        """
        if query.is_dense or any(r.is_dense for r in refs):
            raise BadInput(f"{self.name} needs keypoint features, not dense LoFTR features")
        out = [_no_pairs() for _ in refs]
        if len(query) < 4:
            return out
        groups: dict[int, list[int]] = {}
        for i, ref in enumerate(refs):
            if len(ref) >= 4:
                groups.setdefault(len(ref), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.config.batch_size):
                chunk = idx[start : start + self.config.batch_size]
                matched = self._match_batch(query, [refs[i] for i in chunk])
                for i, (qi, ri, s) in zip(chunk, matched, strict=True):
                    out[i] = (query.keypoints[qi], refs[i].keypoints[ri], s)
        return out

    def _match_batch(
        self, query: LocalFeatures, refs: Sequence[LocalFeatures]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """One LightGlue pass of the query against refs of equal K; per ref
        (query indices (M,), ref indices (M,), scores (M,))."""
        device = self.device
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

"""Detector-free LoFTR (kornia): the ``loftr`` verifier.

LoFTR matches two images directly, so the cacheable "features" of an image are its
preprocessed grayscale image (`LocalFeatures.dense`); the query's backbone features are
computed once per batch of references.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from kornia.feature import LoFTR

from core.errors import BadInput
from matching.backends import images_to_tensor
from matching.features import LocalFeatures
from matching.geometry import resize_long_side, to_original
from matching.verifier import Pairs, VerifierConfig
from weights.checkpoint import fit_state_dict, load_state_dict


def _dense_scale(f: LocalFeatures) -> tuple[float, float]:
    """(sx, sy) from a dense feature's stored image back to its original image."""
    h, w = f.image.shape
    return f.image_size[1] / w, f.image_size[0] / h


class LoftrBackend:
    """Detector-free LoFTR on preprocessed grayscale images.

    Attributes:
        name: ``loftr``.
        model: the LoFTR module.
        config: the `VerifierConfig` (``max_side``, ``batch_size``).
    """

    def __init__(self, name: str, model: LoFTR, config: VerifierConfig) -> None:
        self.name = name
        self.model = model
        self.config = config
        self.device = torch.device("cpu")

    @classmethod
    def build(cls, name: str, config: VerifierConfig) -> LoftrBackend:
        """A randomly initialised LoFTR; touches no disk or network."""
        return cls(name, LoFTR(pretrained=None), config)

    def load_weights(self, files: Sequence[Path]) -> None:
        """Load one checkpoint, bare or wrapped as ``{"state_dict": ...}`` (kornia's files),
        with or without a training ``matcher.`` prefix.

        Raises:
            ModelUnavailable: a missing, unreadable or mismatching file.
        """
        (path,) = files
        sd = load_state_dict(path)
        sd = {k.removeprefix("matcher."): v for k, v in sd.items()}
        fit_state_dict(self.model, sd, path, "LoFTR", allow_unexpected=True)

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the model to ``device`` and ``dtype``, in eval mode."""
        self.device = device
        self.model.to(device, dtype).eval()

    def extract(
        self, images: Sequence[np.ndarray], max_side: int | None = None
    ) -> list[LocalFeatures]:
        """Dense features: each image in grayscale, its long side shrunk to ``max_side``.

        Args:
            images: each uint8 (H, W, 3) RGB (checked by the `Verifier`).

        Returns:
            One `LocalFeatures.dense` per image: uint8 (h, w), no keypoints.
        """
        out = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            small, _ = resize_long_side(
                gray, self.config.max_side if max_side is None else max_side
            )
            out.append(LocalFeatures.dense(small, image.shape[:2]))
        return out

    def match(self, query: LocalFeatures, refs: Sequence[LocalFeatures]) -> list[Pairs]:
        """Match one query against each reference, ``batch_size`` references per pass of the
        query's backbone.

        Returns:
            Per reference (query points (M, 2), ref points (M, 2), confidence (M,)) in
            original pixels.

        Raises:
            BadInput: keypoint (not dense) features on either side.
        """
        if not query.is_dense:
            raise BadInput("LoFTR needs dense features (from a loftr Verifier's extract)")
        if not all(r.is_dense for r in refs):
            raise BadInput("LoFTR needs dense reference features; recompute them")
        out: list[Pairs] = []
        for start in range(0, len(refs), self.config.batch_size):
            out += self._match_chunk(query, refs[start : start + self.config.batch_size])
        return out

    def _match_chunk(self, query: LocalFeatures, refs: Sequence[LocalFeatures]) -> list[Pairs]:
        device = self.device
        dtype = next(self.model.parameters()).dtype
        q_img = images_to_tensor([query.image], device, dtype)
        q_feats = self.model.extract_features(q_img)
        out = []
        for ref in refs:
            r_img = images_to_tensor([ref.image], device, dtype)
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

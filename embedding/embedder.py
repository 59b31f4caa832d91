"""Crops to L2-normalised vectors: ``uint8 (h, w, 3) RGB crops -> float32 (B, D)``.

Build, then load: `Embedder.from_weights(name, path, device)` builds the backbone of
`embedding.backbones.BACKBONES`, loads the checkpoint strictly and calls ``.eval()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import BadInput, ModelUnavailable
from embedding.backbones import BACKBONES
from runtimes import RuntimeRequest, StageRuntime, accelerate
from weights.checkpoint import fit_state_dict, load_state_dict
from weights.registry import sha256_of

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EmbedderConfig:
    """Knobs of the embedder (preprocessing measured on ../shared/data: embedding/README.md)."""

    input_size: int = 224  # side of the square image the backbone sees
    batch_size: int = 32  # crops per forward pass
    half: bool = True  # float16 on CUDA (ignored on the CPU)
    # "stretch": resize to input_size x input_size, ignoring aspect ratio;
    # "pad": longer side to input_size, centred, padded with the ImageNet mean colour
    resize: Literal["stretch", "pad"] = "pad"
    # also embed the mirror image and average the two (a dog facing left is the same dog; not
    # for products, whose text mirrors): +1.6 pts recall@1, +2.7 @5 on unseen dogs, 2x cost
    mirror: bool = False

    def __post_init__(self) -> None:
        if self.input_size < 32 or self.batch_size < 1:
            raise BadInput(
                f"EmbedderConfig needs input_size >= 32 and batch_size >= 1, "
                f"got {self.input_size}, {self.batch_size}"
            )
        if self.resize not in ("stretch", "pad"):
            raise BadInput(f"EmbedderConfig.resize must be 'stretch' or 'pad', not {self.resize!r}")


class Embedder:
    """A loaded backbone that turns crops into L2-normalised float32 vectors.

    Attributes:
        name: model name (a key of `embedding.backbones.BACKBONES`).
        dim: length D of each vector.
        fingerprint: ``"<name>:<first 12 hex of the weights' sha256>"``; catalogs store it and
            refuse to mix vectors of different models.
        device: where the model runs.
        config: the `EmbedderConfig` in use.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        dim: int,
        fingerprint: str,
        device: torch.device,
        config: EmbedderConfig | None = None,
    ) -> None:
        self.name = name
        self.dim = dim
        self.device = torch.device(device)
        self.config = config or EmbedderConfig()
        # mirrored vectors differ: a catalog indexed without it must not be searched with it
        self.fingerprint = fingerprint + ("+mirror" if self.config.mirror else "")
        self.dtype = (
            torch.float16 if self.config.half and self.device.type == "cuda" else torch.float32
        )
        self.model = model.to(self.device, self.dtype).eval()
        #: the files the model was loaded from (the export cache keys on their sha256)
        self.sources: list[Path] = []
        #: the network's forward: the torch model, or its exported copy (`accelerate`)
        self.forward = self.model
        #: what the network runs on (`runtimes.StageRuntime`)
        self.runtime = StageRuntime(f"embedder:{name}", "torch", "fp32", "torch/fp32")
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_weights(
        cls,
        name: str,
        path: Path,
        device: torch.device | str = "cpu",
        config: EmbedderConfig | None = None,
    ) -> Embedder:
        """Build the backbone ``name`` and load ``path`` into it strictly.

        Raises:
            ModelUnavailable: unknown name; missing, corrupt or foreign checkpoint (the message
                names missing and unexpected keys, or mismatched shapes).
        """
        backbone = BACKBONES.get(name)
        if backbone is None:
            raise ModelUnavailable(
                f"unknown embedder {name!r}; known: {', '.join(sorted(BACKBONES))}"
            )
        state = load_state_dict(path)
        state = {k: v for k, v in state.items() if not k.startswith(backbone.drop_prefixes)}
        model = backbone.build()
        fit_state_dict(model, state, path, name)
        fingerprint = f"{name}:{sha256_of(Path(path))[:12]}"
        embedder = cls(name, model, backbone.dim, fingerprint, torch.device(device), config)
        embedder.sources = [Path(path)]
        return embedder

    @classmethod
    def from_head(
        cls,
        name: str,
        head_path: Path,
        base_path: Path,
        device: torch.device | str = "cpu",
        config: EmbedderConfig | None = None,
        mirror: bool = False,
    ) -> Embedder:
        """A trained head (`embedding.head`) on top of its base backbone.

        Args:
            name: the model's registry name (e.g. ``"products"``).
            head_path: the head file (`embedding.head`), with or without a fine-tuned
                backbone.
            base_path: the base backbone's weights; their sha256 must be the head's
                ``base_sha256``.
            config: defaults to the head's own ``input_size`` and ``resize``, and ``mirror``.

        Returns:
            An embedder of ``dim = head.dim`` whose fingerprint is
            ``"<name>:<first 12 hex of the head file's sha256>"``.

        Raises:
            ModelUnavailable: unreadable head, a base file other than the one it was trained
                on, or a head that does not fit the backbone.
        """
        from embedding.head import WithHead, read_head

        ckpt = read_head(Path(head_path))
        base_sha = sha256_of(Path(base_path))
        if base_sha != ckpt.base_sha256:
            raise ModelUnavailable(
                f"{head_path} was trained on {ckpt.base_file} (sha256 {ckpt.base_sha256[:12]}), "
                f"not on {base_path} (sha256 {base_sha[:12]})"
            )
        base = cls.from_weights(ckpt.base, Path(base_path), "cpu")
        if base.dim != ckpt.in_dim:
            raise ModelUnavailable(f"{head_path} expects {ckpt.in_dim}-d features, got {base.dim}")
        if ckpt.backbone is not None:  # fine-tuned: its weights replace the base's
            try:
                base.model.load_state_dict(
                    {k: v.float() if v.is_floating_point() else v for k, v in ckpt.backbone.items()}
                )
            except RuntimeError as exc:
                msg = f"{head_path}'s fine-tuned backbone does not fit {ckpt.base}: {exc}"
                raise ModelUnavailable(msg) from None
        model = WithHead(base.model.float(), ckpt.build_head())
        config = config or EmbedderConfig(
            input_size=ckpt.input_size, resize=ckpt.resize, mirror=mirror
        )
        fingerprint = f"{name}:{sha256_of(Path(head_path))[:12]}"
        embedder = cls(name, model, ckpt.dim, fingerprint, torch.device(device), config)
        embedder.sources = [Path(head_path), Path(base_path)]
        return embedder

    def accelerate(self, request: RuntimeRequest) -> StageRuntime:
        """Run the network on ``request``'s runtime (exported once from `sources`, dynamic
        batch axis, ``input_size`` square input), or on torch with the reason when it cannot.

        Raises:
            RuntimeNotInstalled: a runtime named explicitly whose package is missing.
        """
        if self.dtype != torch.float32 or not self.sources:  # fp16 on CUDA stays torch's
            request = replace(request, runtime="torch")
        size = self.config.input_size
        self.forward, self.runtime = accelerate(
            self.model,
            stage=f"embedder:{self.name}",
            stem=f"{self.name}-{self.sources[0].stem}" if self.sources else self.name,
            sources=self.sources,
            sample=torch.zeros(2, 3, size, size),
            shape=("b", 3, size, size),
            request=request,
            device=self.device,
        )
        return self.runtime

    def preprocess(self, crop: np.ndarray) -> torch.Tensor:
        """``uint8 (h, w, 3) RGB -> float (1, 3, S, S)`` normalised, S = input_size."""
        if not (
            isinstance(crop, np.ndarray)
            and crop.dtype == np.uint8
            and crop.ndim == 3
            and crop.shape[2] == 3
            and crop.shape[0] > 0
            and crop.shape[1] > 0
        ):
            got = (
                f"{crop.dtype} {crop.shape}"
                if isinstance(crop, np.ndarray)
                else type(crop).__name__
            )
            raise BadInput(f"a crop must be uint8 (h, w, 3) RGB with h, w > 0; got {got}")
        size = self.config.input_size
        x = torch.from_numpy(np.require(crop, requirements=("C", "W"))).to(self.device)
        x = x.permute(2, 0, 1)[None].float().div_(255.0)
        h, w = crop.shape[:2]
        if self.config.resize == "stretch":
            out_h, out_w = size, size
        else:
            scale = size / max(h, w)
            out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
        if (out_h, out_w) != (h, w):
            x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", antialias=True)
        x = (x - self._mean) / self._std
        if (out_h, out_w) != (size, size):  # pad with 0 = the mean colour after normalising
            top, left = (size - out_h) // 2, (size - out_w) // 2
            x = F.pad(x, (left, size - out_w - left, top, size - out_h - top))
        return x

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Embed image crops in batches of ``config.batch_size``.

        Args:
            crops: B images, each uint8 (h, w, 3) RGB of any size (or one uint8 (B, h, w, 3)).

        Returns:
            float32 (B, D), each row L2-normalised; (0, D) for no crops.

        Raises:
            BadInput: a crop that is not uint8 (h, w, 3) with h, w > 0.
        """
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        step = self.config.batch_size
        with torch.inference_mode():
            for start in range(0, len(crops), step):
                batch = torch.cat([self.preprocess(c) for c in crops[start : start + step]])
                n = len(batch)
                if self.config.mirror:
                    batch = torch.cat([batch, batch.flip(-1)])
                feats = F.normalize(self.forward(batch.to(self.dtype)).float(), dim=1)
                if self.config.mirror:  # (2n, D) -> (n, D): the mean of the two views
                    feats = F.normalize(feats[:n] + feats[n:], dim=1)
                out.append(feats.cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

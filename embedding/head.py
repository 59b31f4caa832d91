"""A trained projection head on a backbone, and its file format.

A head file is a ``torch.save`` of plain data (loads with ``weights_only=True``)::

    {"format": "sighting-head/2", "base": "mobilenet_v2", "base_file": "...pt",
     "base_sha256": "...", "in_dim": 1280, "dim": 256, "input_size": 224, "resize": "pad",
     "head": {state_dict, float16}, "backbone": {state_dict, float16} or None,
     "trained_on": "...", "command": "...", "val_recall": {...}}

The model is the base backbone (found through `weights.registry.resolve`, its sha256 checked)
followed by `ProjectionHead`. ``backbone`` is None for a head trained on the frozen base (~0.65
MB in half precision for 1280 -> 256); a fine-tuned backbone (``embedding.train
--finetune-epochs``) is stored whole and replaces the base's weights (~4.5 MB more for
MobileNetV2). ``sighting-head/1`` files (no ``backbone``) still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.errors import ModelUnavailable
from weights.checkpoint import load_checkpoint

HEAD_FORMAT = "sighting-head/2"
READABLE_FORMATS = ("sighting-head/1", HEAD_FORMAT)


class ProjectionHead(nn.Module):
    """``float32 (B, in_dim)`` pooled backbone features -> ``(B, dim)`` (un-normalised).

    Linear (no bias) + BatchNorm1d: the BN centres the projected features, which matters
    for cosine similarity on top of ReLU-pooled (all-positive) backbone features.
    """

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.in_dim, self.dim = in_dim, dim
        self.proj = nn.Linear(in_dim, dim, bias=False)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(B, in_dim) -> (B, dim)``."""
        return self.bn(self.proj(feats))


class WithHead(nn.Module):
    """Backbone then head: ``image (B, 3, S, S) -> (B, dim)`` (un-normalised)."""

    def __init__(self, backbone: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S) -> (B, dim)``."""
        return self.head(self.backbone(x))


@dataclass(frozen=True)
class HeadCheckpoint:
    """The contents of a head file (see the module docstring)."""

    base: str  # backbone name, a key of embedding.backbones.BACKBONES
    base_file: str  # registry file name of the backbone weights
    base_sha256: str
    in_dim: int
    dim: int
    input_size: int
    resize: str
    head: dict[str, torch.Tensor]
    backbone: dict[str, torch.Tensor] | None = None  # fine-tuned weights replacing the base's
    trained_on: str = ""
    command: str = ""
    val_recall: dict[str, float] = field(default_factory=dict)

    def build_head(self) -> ProjectionHead:
        """A `ProjectionHead` (float32, eval mode) with these weights, loaded strictly.

        Raises:
            ModelUnavailable: the state_dict does not fit ``in_dim -> dim``.
        """
        head = ProjectionHead(self.in_dim, self.dim)
        try:
            head.load_state_dict({k: v.float() for k, v in self.head.items()}, strict=True)
        except RuntimeError as exc:
            msg = f"head weights do not fit {self.in_dim}->{self.dim}: {exc}"
            raise ModelUnavailable(msg) from None
        return head.eval()


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors in float16 on the CPU; integer buffers kept."""
    return {
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
        for k, v in state.items()
    }


def save_head(path: Path, ckpt: HeadCheckpoint) -> None:
    """Write ``ckpt`` to ``path`` (weights in float16; integer buffers kept)."""
    data = {
        "format": HEAD_FORMAT,
        "base": ckpt.base,
        "base_file": ckpt.base_file,
        "base_sha256": ckpt.base_sha256,
        "in_dim": ckpt.in_dim,
        "dim": ckpt.dim,
        "input_size": ckpt.input_size,
        "resize": ckpt.resize,
        "head": _half(ckpt.head),
        "backbone": _half(ckpt.backbone) if ckpt.backbone is not None else None,
        "trained_on": ckpt.trained_on,
        "command": ckpt.command,
        "val_recall": {k: float(v) for k, v in ckpt.val_recall.items()},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)


def read_head(path: Path) -> HeadCheckpoint:
    """Read a head file.

    Raises:
        ModelUnavailable: missing, unreadable, or not a ``sighting-head/1`` file.
    """
    path = Path(path)
    data = load_checkpoint(path, "head file")
    if data.get("format") not in READABLE_FORMATS:
        raise ModelUnavailable(f"{path} is not a {HEAD_FORMAT} head file")
    backbone = data.get("backbone")
    try:
        return HeadCheckpoint(
            base=str(data["base"]),
            base_file=str(data["base_file"]),
            base_sha256=str(data["base_sha256"]),
            in_dim=int(data["in_dim"]),
            dim=int(data["dim"]),
            input_size=int(data["input_size"]),
            resize=str(data["resize"]),
            head=dict(data["head"]),
            backbone=dict(backbone) if backbone is not None else None,
            trained_on=str(data.get("trained_on", "")),
            command=str(data.get("command", "")),
            val_recall=dict(data.get("val_recall", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelUnavailable(f"head file {path} lacks a field: {exc}") from None

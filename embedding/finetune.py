"""Fine-tune the backbone together with its head on augmented photos (``embedding.train
--finetune-epochs N``).

The frozen-backbone head (`embedding.train`'s default) learns the catalog's own items but
barely helps on identities it never saw: the ImageNet features do not separate one dog's
face from another's. Fine-tuning the whole MobileNetV2 does (measured in
``embedding/README.md``). Schedule: ``warmup`` epochs train the head alone on the frozen
backbone (AdamW at ``head_lr``), then everything trains with AdamW on a one-cycle schedule
peaking at ``backbone_lr`` for the backbone and ``head_lr / 4`` for the head. BatchNorm
statistics stay frozen (small batches of few identities would skew them); their affine
weights train. Each photo is decoded once, then augmented (`embedding.photos.augment`) and
embedded afresh every epoch, so there is no feature cache.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from embedding.photos import augment
from embedding.schedule import one_cycle


@dataclass(frozen=True)
class FinetuneConfig:
    """Knobs of the fine-tuning phase."""

    epochs: int  # epochs with the backbone unfrozen
    warmup: int = 1  # epochs of the head alone first (a random head would wreck the backbone)
    head_lr: float = 2e-3
    backbone_lr: float = 2e-4
    weight_decay: float = 1e-4
    batch_size: int = 64
    flip: bool = False
    seed: int = 0


def _freeze_bn_stats(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def finetune(
    backbone: nn.Module,
    head: nn.Module,
    loss_fn: nn.Module,
    images: Sequence[np.ndarray],
    labels: np.ndarray,
    preprocess: Callable[[np.ndarray], torch.Tensor],
    cfg: FinetuneConfig,
    evaluate: Callable[[], dict[str, float]],
) -> dict[str, float]:
    """Train ``head(backbone(x))`` with ``loss_fn`` on augmented ``images``.

    Args:
        backbone: ``(B, 3, S, S) -> (B, F)`` pooled features (trained in place).
        head: ``(B, F) -> (B, D)`` (trained in place).
        loss_fn: ``(emb (B, D), labels int64 (B,)) -> scalar`` with its own parameters
            (e.g. `embedding.losses.SubCenterArcFace`).
        images: the N training photos, uint8 (h, w, 3).
        labels: int64 (N,) class of each photo, in ``[0, n_classes)``.
        preprocess: ``uint8 (h, w, 3) -> float (1, 3, S, S)`` on the training device.
        evaluate: called after each epoch (models in eval mode); returns validation metrics.

    Returns:
        The last epoch's validation metrics.
    """
    device = next(head.parameters()).device
    rng = np.random.default_rng(cfg.seed)
    per_epoch = math.ceil(len(images) / cfg.batch_size)
    head_params = list(head.parameters()) + list(loss_fn.parameters())
    results: dict[str, float] = {}

    def run_epoch(name: str, opt: torch.optim.Optimizer, sched=None) -> float:
        head.train()
        total, seen = 0.0, 0
        order = rng.permutation(len(images))
        bar = tqdm(range(per_epoch), desc=name, unit="batch", file=sys.stderr, leave=False)
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if len(idx) < 2:
                continue  # BatchNorm1d needs two samples
            x = torch.cat([preprocess(augment(images[i], rng, cfg.flip)) for i in idx])
            y = torch.as_tensor(labels[idx], device=device)
            loss = loss_fn(head(backbone(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        return total / max(seen, 1)

    def report(name: str, loss: float) -> None:
        backbone.eval()
        head.eval()
        results.clear()
        results.update(evaluate())
        tqdm.write(
            f"{name} loss={loss:.3f} " + " ".join(f"{k}={v:.3f}" for k, v in results.items()),
            file=sys.stderr,
        )

    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(head_params, lr=cfg.head_lr, weight_decay=cfg.weight_decay)
    for epoch in range(cfg.warmup):
        report(f"head warm-up {epoch + 1}/{cfg.warmup}", run_epoch("warm-up", opt))

    for p in backbone.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(
        [
            {"params": list(backbone.parameters()), "lr": cfg.backbone_lr},
            {"params": head_params, "lr": cfg.head_lr / 4},
        ],
        weight_decay=cfg.weight_decay,
    )
    sched = one_cycle(opt, [cfg.backbone_lr, cfg.head_lr / 4], cfg.epochs * per_epoch)
    for epoch in range(cfg.epochs):
        backbone.train()
        _freeze_bn_stats(backbone)
        loss = run_epoch(f"fine-tune {epoch + 1}/{cfg.epochs}", opt, sched)
        report(f"fine-tune {epoch + 1}/{cfg.epochs}", loss)
    backbone.eval()
    head.eval()
    return dict(results)

"""Learning-rate schedules for `embedding.train` and `embedding.finetune`."""

from __future__ import annotations

import torch


def one_cycle(
    opt: torch.optim.Optimizer, lr: float | list[float], steps: int
) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle schedule with about 10 % warm-up, for any number of steps (``lr``: the peak,
    or one per parameter group).

    torch's `OneCycleLR` divides by zero when a phase ends on the step it starts (10 steps at
    ``pct_start=0.1``: a small set); warm-up ending half a step past a whole step never does.
    """
    warm = max(0, min(round(0.1 * steps), steps - 1))
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, lr, total_steps=steps, pct_start=(warm + 0.5) / steps
    )

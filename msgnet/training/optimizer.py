"""Adam for MSG-Net (the recipe's single parameter group) and its learning-rate warm-up.

A trainstate's optimizer resumes with the learning rate of the current configuration, not the
saved one, so a run can continue at another ``--lr``.
"""

from __future__ import annotations

from typing import Any

import torch

from msgnet.model.net import Net


def warmup_lr(lr: float, step: int, warmup_steps: int) -> float:
    """The learning rate at ``step`` (0-based) of a linear warm-up from 0.

    A fresh Adam's first steps move every entry by ~lr in the sign of one batch's gradient
    (its second moment is one sample): on trained weights that undid ~400 steps of progress
    (workbench/lab-notebook.md, 2026-12-02 second session). The trainstate's step counter
    starts at 0 with the optimizer, so the warm-up counts from the optimizer's first step.
    """
    return lr * (1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_optimizer(net: Net, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(net.parameters(), lr=lr)


def load_optimizer_state(optimizer: torch.optim.Adam, saved: dict[str, Any], lr: float) -> None:
    """Load ``saved`` (an Adam state dict of this network) into ``optimizer``; the learning
    rate is the given one."""
    optimizer.load_state_dict(saved)
    set_lr(optimizer, lr)

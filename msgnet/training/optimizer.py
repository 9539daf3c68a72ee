"""Adam for MSG-Net, with the Inspiration weight in a parameter group of its own.

Adam moves every entry by about ``lr`` a step, whatever its scale. The Inspiration weight
started at ``(mean Gram + λI)⁻¹`` has entries near 1/λ (~1 000 at λ = 1e-3), so at the
recipe's lr of 1e-3 it changes by ~0.1% in 1 600 steps while the convolutions change by 20-60%
(measured between two checkpoints): it is frozen in practice. ``inspiration_lr`` gives it a
step size that matches its scale. Without it the optimizer is the recipe's single group.

Trainstates written with either layout resume into either: Adam's per-parameter moments are
matched by parameter, and the learning rates always come from the current configuration.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from msgnet.model.net import Net


def parameter_groups(net: Net, split: bool) -> list[list[nn.Parameter]]:
    """The parameters in optimizer order: one group, or everything else then ``W``."""
    if not split:
        return [list(net.parameters())]
    w = net.ins.weight
    return [[p for p in net.parameters() if p is not w], [w]]


def group_lrs(lr: float, inspiration_lr: float | None) -> list[float]:
    return [lr] if inspiration_lr is None else [lr, inspiration_lr]


def warmup_lrs(lr: float, inspiration_lr: float | None, step: int, warmup_steps: int
               ) -> list[float]:
    """The groups' learning rates at ``step`` (0-based) of a linear warm-up from 0.

    A fresh Adam's first steps move every entry by ~lr in the sign of one batch's gradient
    (its second moment is one sample): on trained weights that undid ~400 steps of progress
    (docs/training-log.md, 2026-12-02 second session). The trainstate's step counter starts at 0
    with the optimizer, so the warm-up counts from the optimizer's first step.
    """
    factor = 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)
    return [r * factor for r in group_lrs(lr, inspiration_lr)]


def set_lrs(optimizer: torch.optim.Optimizer, lrs: list[float]) -> None:
    for group, group_lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = group_lr


def make_optimizer(net: Net, lr: float, inspiration_lr: float | None = None) -> torch.optim.Adam:
    groups = parameter_groups(net, inspiration_lr is not None)
    lrs = group_lrs(lr, inspiration_lr)
    return torch.optim.Adam([{"params": g, "lr": r} for g, r in zip(groups, lrs, strict=True)],
                            lr=lr)


def load_optimizer_state(optimizer: torch.optim.Adam, saved: dict[str, Any], net: Net,
                         lr: float, inspiration_lr: float | None = None) -> None:
    """Load ``saved`` (an Adam state dict of either layout) into ``optimizer`` (built by
    :func:`make_optimizer` for ``net``); the learning rates are the given ones."""
    old_layout = parameter_groups(net, len(saved["param_groups"]) == 2)
    old_index = {id(p): i for i, p in enumerate(q for g in old_layout for q in g)}
    new_params = [p for g in optimizer.param_groups for p in g["params"]]
    converted = optimizer.state_dict()  # this optimizer's groups (indices, hyperparameters)
    old_groups = saved["param_groups"]
    for i, group in enumerate(converted["param_groups"]):  # betas, eps, ... as saved
        old = old_groups[min(i, len(old_groups) - 1)]
        group.update({k: v for k, v in old.items() if k not in ("params", "lr")})
    converted["state"] = {new_i: saved["state"][old_index[id(p)]]
                          for new_i, p in enumerate(new_params)
                          if old_index[id(p)] in saved["state"]}
    optimizer.load_state_dict(converted)
    set_lrs(optimizer, group_lrs(lr, inspiration_lr))

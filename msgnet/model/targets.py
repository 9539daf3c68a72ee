"""What a style target holds: the Gram matrix, and for learned styles the decoder's affine.

A preset or an upload is the encoder Gram ``G`` of its style, a (B, C, C) tensor. A learned
style (:mod:`msgnet.learning.learn`) also carries a per-channel scale and shift for every instance
norm of the decoder, the conditional instance norm of Dumoulin et al. (2017): with ``G`` alone one
matrix has to carry the whole style, and on unseen styles the fit stalls at about twice the
style loss (docs/learn.md). The two travel as one tensor, (B, C, C + P): the Gram's columns
and then ``P`` columns holding ``[log gamma (K), beta (K), zeros]`` row-major, ``K`` being the
decoder's norm channels. Every operation on targets is linear (mixing, strength, a cache of
tensors), and zero columns are the identity (gamma 1, beta 0), so a Gram-only target is the
same style as its widened form and the two mix by padding (:func:`widen`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def extra_columns(channels: int, affine_size: int) -> int:
    """``P``: columns that hold ``2 * affine_size`` numbers beside a (C, C) Gram."""
    return math.ceil(2 * affine_size / channels)


def pack(gram: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """``(B, C, C)`` Gram and ``(B, 2, K)`` affine (log gamma, beta) -> ``(B, C, C + P)``."""
    b, c, _ = gram.shape
    k = affine.shape[-1]
    p = extra_columns(c, k)
    flat = torch.zeros(b, c * p, dtype=gram.dtype, device=gram.device)
    flat[:, :2 * k] = affine.reshape(b, 2 * k).to(gram.dtype)
    return torch.cat([gram, flat.reshape(b, c, p)], dim=-1)


def split(target: torch.Tensor, affine_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, C, C[+P])`` -> the Gram (B, C, C) and the affine (B, 2, K), or None if Gram-only.

    :class:`ValueError` when the width fits neither layout (another network's target).
    """
    c, width = target.shape[-2], target.shape[-1]
    if width == c:
        return target, None
    if width != c + extra_columns(c, affine_size):
        raise ValueError(f"a style target of {c} channels is {c} or "
                         f"{c + extra_columns(c, affine_size)} columns wide, got {width}")
    b = target.shape[0]
    flat = target[..., c:].reshape(b, -1)
    return target[..., :c], flat[:, :2 * affine_size].reshape(b, 2, affine_size)


def has_affine(target: torch.Tensor) -> bool:
    """Whether the target carries a decoder affine (it is wider than its Gram)."""
    return target.shape[-1] != target.shape[-2]


def widen(target: torch.Tensor, width: int) -> torch.Tensor:
    """``target`` with zero (identity) affine columns up to ``width``; itself if as wide."""
    if target.shape[-1] == width:
        return target
    if target.shape[-1] > width:
        raise ValueError(f"cannot narrow a style target of {target.shape[-1]} columns to {width}")
    return torch.nn.functional.pad(target, (0, width - target.shape[-1]))


def widen_all(targets: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The targets at one width (the widest), so they can be mixed or batched together."""
    width = max(t.shape[-1] for t in targets)
    return [widen(t, width) for t in targets]

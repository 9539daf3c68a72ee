"""How much of the content passes the Inspiration layer, and a start that lets more through.

The layer multiplies the content features by ``P = W·G`` (``G`` the style's encoder Gram). The
encoder's Grams are dominated by a few directions, and ``W`` starts at U(0, 0.02), so ``P``
starts almost rank-one: the decoder then sees a projection of the photo onto one or two
directions, which looks like embossed edges whatever the style. Two tools for that:

* :func:`inspiration_ranks` - the effective rank of ``P`` and of ``G`` over a preset bank, a
  cheap diagnostic for the training log;
* :func:`inverse_gram_init` - ``W = (mean G + λ·I)⁻¹``, so that ``P ≈ I`` on the Grams'
  significant subspace at the start.
"""

from __future__ import annotations

import statistics

import torch

from msgnet.model.net import Net, inspiration_matrix

# the shipped file stores fp16 (max 65504); keep |W| well inside it
MAX_ABS_WEIGHT = 1e4


def effective_rank(matrix: torch.Tensor) -> float:
    """(Σs)² / Σs² over the singular values: 1 for rank one, n for n equal directions."""
    s = torch.linalg.svdvals(matrix.double().reshape(matrix.shape[-2], matrix.shape[-1]))
    return float(s.sum() ** 2 / (s ** 2).sum()) if float(s.abs().sum()) > 0 else 0.0


def transmitted_share(matrix: torch.Tensor, feats: torch.Tensor) -> float:
    """How much of a photo's feature *variation* passes ``y = M x`` at the layer's full gain.

    ``feats`` (C, N) are the encoder features of one photo; their channel means are removed
    (the variation carries the picture). Each component along a right singular vector of
    ``M`` counts with its gain squared relative to the largest: 1 when every direction passes
    alike, near 0 when the photo lives where ``M`` is almost zero.
    """
    m = matrix.detach().double().reshape(matrix.shape[-2], matrix.shape[-1])
    x = feats.detach().double().reshape(m.shape[1], -1)
    x = x - x.mean(1, keepdim=True)
    _, s, vh = torch.linalg.svd(m)
    energy = (vh @ x).square().sum(1)
    return float(((s / s[0]).square() * energy).sum() / energy.sum())


def inspiration_ranks(net: Net, grams: dict[str, torch.Tensor]) -> dict[str, float]:
    """Median effective rank of ``P = W·G`` and of ``G`` over ``grams`` (name -> (1, C, C))."""
    w = net.ins.weight.detach().float().cpu()[0]
    skip = None if net.ins.skip is None else net.ins.skip.detach().float().cpu()
    p_ranks, g_ranks = [], []
    for g in grams.values():
        g2 = g.detach().float().cpu().reshape(w.shape)
        p_ranks.append(effective_rank(inspiration_matrix(w, g2, skip,
                                                         net.ins.skip_relative)))
        g_ranks.append(effective_rank(g2))
    return {"p_rank": round(statistics.median(p_ranks), 2),
            "gram_rank": round(statistics.median(g_ranks), 2)}


def inverse_gram_init(net: Net, grams: list[torch.Tensor], lam: float) -> float:
    """Set ``W = (mean G + λ·I)⁻¹``; return max |W|. Refuses a λ that would overflow fp16."""
    if lam <= 0:
        raise ValueError("the Inspiration init's lambda must be > 0")
    c = net.channels
    mean = torch.stack([g.detach().double().reshape(c, c) for g in grams]).mean(0)
    mean = (mean + mean.T) / 2
    w = torch.linalg.inv(mean + lam * torch.eye(c, dtype=torch.float64))
    peak = float(w.abs().max())
    if peak > MAX_ABS_WEIGHT:
        raise ValueError(f"lambda {lam:g} gives max |W| = {peak:.3g}, over {MAX_ABS_WEIGHT:g} "
                         "(fp16 weights file); use a larger lambda")
    with torch.no_grad():
        net.ins.weight.copy_(w.to(net.ins.weight.dtype).unsqueeze(0))
    return peak

"""Per-style weights that even out how hard each style pulls against the photo.

The recipe weights every style's Gram loss alike, but the styles start very differently far
from a photo: on held-out photos the unstylized photo's style loss runs from 2.1e5 (udnie) to
2.5e6 (mosaic), 11x. With one weight the far styles dominate the gradient. Measured at 17 500
steps (docs/quality.json), they end over-stylized (mosaic's style ratio 0.08 against udnie's
0.18) with the photo lost (content ratio 0.80 against 0.41), and they dominate both aggregate
ratios.

``--style-balance ALPHA`` multiplies style ``s``'s loss by ``(ū / u_s) ** ALPHA``, where ``u_s``
is the style loss of unstylized training crops against ``s`` and ``ū`` their geometric mean (so
the mean log-weight is 0, the overall balance against the content loss is unchanged). ALPHA 1
makes each style's loss its style ratio times ``ū``; 0 is the recipe.
"""

from __future__ import annotations

import math

import torch

from msgnet.learning.vgg import Vgg16Features, gram_loss, style_grams


def unstylized_losses(vgg: Vgg16Features, photos: torch.Tensor,
                      targets: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """Style loss of the photos themselves against each style's Gram targets."""
    with torch.no_grad():
        grams = style_grams(vgg(photos))
        return {name: float(gram_loss(grams, t)) for name, t in targets.items()}


def balance_weights(losses: dict[str, float], alpha: float) -> dict[str, float]:
    """``(geometric mean / loss) ** alpha`` per style; all 1.0 at alpha 0."""
    if any(v <= 0 for v in losses.values()):
        raise ValueError("style losses must be positive to balance them")
    log_mean = sum(math.log(v) for v in losses.values()) / len(losses)
    return {name: math.exp(alpha * (log_mean - math.log(v))) for name, v in losses.items()}


def parse_style_factors(items: list[str] | None) -> dict[str, float]:
    """``["candy=1.5", ...]`` (``--style-factor``) as ``{"candy": 1.5}``; a clear error if not."""
    factors: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            factor = float(value) if sep and name else None
        except ValueError:
            factor = None
        if factor is None or not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"--style-factor wants NAME=FACTOR with a positive FACTOR, "
                             f"got {item!r}")
        factors[name] = factor
    return factors


def apply_style_factors(weights: dict[str, float], factors: dict[str, float]) -> dict[str, float]:
    """Multiply named styles' loss weights, e.g. to keep confusable styles stylized.

    Raising one style's weight is lowering its content weight alone: at a higher content weight
    identification fell only for styles with a near twin (candy/composition_vii,
    feathers/escher_sphere, robert_delaunay_portrait/woman_with_hat_matisse; docs/training.md).
    """
    unknown = sorted(set(factors) - set(weights))
    if unknown:
        raise ValueError(f"--style-factor names unknown styles {unknown}; "
                         f"the styles are {sorted(weights)}")
    return {name: w * factors.get(name, 1.0) for name, w in weights.items()}

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

from msgnet.vgg import Vgg16Features, gram_loss, style_grams


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

"""The measures of the quality report: VGG style and content losses of an output, PSNR, the
Gatys optimisation a feed-forward network approximates, and whether styles can be told apart
(identification and separation, overall and per style)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

import torch

from msgnet.learning.vgg import Features, Vgg16Features, content_loss, gram_loss, style_loss


@dataclass
class Losses:
    style: float
    content: float


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in 0..255 (clamped first, as they would be shown)."""
    mse = float(((a.clamp(0, 255) - b.clamp(0, 255)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(255.0 ** 2 / mse)).item()


def measure(vgg: Vgg16Features, output: torch.Tensor, content_feats: Features,
            targets: list[torch.Tensor]) -> Losses:
    with torch.inference_mode():
        feats = vgg(output)
        return Losses(style=style_loss(feats, targets).item(),
                      content=content_loss(feats, content_feats).item())


def gatys(vgg: Vgg16Features, content: torch.Tensor, targets: list[torch.Tensor], steps: int,
          content_weight: float = 1.0, style_weight: float = 5.0, lr: float = 5.0
          ) -> torch.Tensor:
    """Optimise the pixels (initialised from the photo) with Adam on the training losses."""
    with torch.no_grad():
        content_feats = {k: f.detach() for k, f in vgg(content).items()}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        feats = vgg(x)
        loss = (content_weight * content_loss(feats, content_feats)
                + style_weight * style_loss(feats, targets))
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 255)
    return x.detach()


@dataclass
class Output:
    """One stylized photo, reduced to what the report needs."""

    content: str
    style: str
    grams: list[torch.Tensor]
    losses: Losses


def _ratio(num: list[float], den: list[float]) -> float:
    return statistics.fmean(num) / statistics.fmean(den) if den and statistics.fmean(den) else 0.0


def style_figures(outputs: list[Output], vgg_targets: dict[str, list[torch.Tensor]],
                  unstylized: dict[tuple[str, str], Losses],
                  as_style: dict[tuple[str, str], Losses]) -> dict:
    """Identification, separation and the loss ratios, overall and per style.

    * identification: the output's own style image is the nearest (by the style loss, i.e. the
      Gram distance over relu1_2..relu4_3) among all evaluated styles; chance is 1/N;
    * separation: for two styles' outputs of the same photo, their Gram distance divided by the
      distance between the two style images, averaged over style pairs and photos (0: every
      style gives the same picture; 1: outputs as far apart as the styles);
    * style ratio: style loss of the output / of the unstylized photo (lower is more stylized);
    * content ratio: content loss of the output / of the style image itself (lower keeps more
      of the photo).
    """
    names = list(vgg_targets)
    nearest: dict[tuple[str, str], str] = {}
    for o in outputs:
        dist = {n: float(gram_loss(o.grams, vgg_targets[n])) for n in names}
        nearest[(o.content, o.style)] = min(dist, key=dist.__getitem__)
    pair_dist = {(a, b): float(gram_loss(vgg_targets[a], vgg_targets[b]))
                 for i, a in enumerate(names) for b in names[i + 1:]}
    by_photo: dict[str, dict[str, Output]] = {}
    for o in outputs:
        by_photo.setdefault(o.content, {})[o.style] = o
    separations = [float(gram_loss(row[a].grams, row[b].grams)) / d
                   for row in by_photo.values() for (a, b), d in pair_dist.items()
                   if a in row and b in row and d > 0]

    def figures(items: list[Output]) -> dict:
        keys = [(o.content, o.style) for o in items]
        return {
            "identification": statistics.fmean(nearest[k] == k[1] for k in keys),
            "style_ratio": _ratio([o.losses.style for o in items],
                                  [unstylized[k].style for k in keys]),
            "content_ratio": _ratio([o.losses.content for o in items],
                                    [as_style[k].content for k in keys]),
        }

    per_style = {}
    for n in names:
        mine = [o for o in outputs if o.style == n]
        nearest_counts = Counter(nearest[(o.content, n)] for o in mine)
        per_style[n] = {**figures(mine), "most_often_nearest": nearest_counts.most_common(1)[0][0]}
    return {**figures(outputs), "chance": 1 / len(names),
            "separation": statistics.fmean(separations) if separations else 0.0,
            "styles": len(names), "photos": len(by_photo), "per_style": per_style}

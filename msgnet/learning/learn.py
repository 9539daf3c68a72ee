"""Learn a new style in under a minute: fit one style target with the generator frozen.

An upload's encoder Gram ``G0`` is a poor target for a style the network was not trained on
(docs/learn.md: 21% identification on unseen styles). Here only the target is fitted, on the
recipe's VGG16 losses, with every weight of the generator frozen:

* the training photos' encoder features are computed once (they do not depend on the target),
  so a step runs the part after the encoder and the VGG loss network only;
* the optimised tensor is the matrix the Inspiration layer applies, ``M = (W G)^T``, started
  at the upload's own ``M0``; the result is stored as a Gram target ``G = W^{-1} M^T`` so that
  mixing, strength, keep-colours, batching and clips treat it exactly as a preset;
* both losses are measured in the units the quality figures use, relative to references taken
  once on the same photos: the style loss over the unstylized photos' (the style ratio), the
  content loss over the style image's own (the content ratio). A weight fixed in those units
  treats a soft watercolour and a black-and-white texture alike, where fixed raw weights let
  the texture (50x the style loss) wipe out the photo.
* ``content_budget`` (default) adapts the content weight during the fit instead: it rises while
  the content ratio of the steps is above the budget and falls while below, so each style gets
  as much style as the photo can take.
* ``affine`` (default) also fits a scale and a shift for every instance norm of the decoder
  (5 408 channels), the conditional instance norm of Dumoulin et al. (2017), stored beside the
  Gram (:mod:`msgnet.model.targets`). The matrix alone stalls at a style ratio of ~0.26 on held-out
  photos; with the affine it reaches ~0.09 at the same content ratio, in the same time
  (docs/learn.md).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image

from msgnet.imageio import image_to_bgr, load_image, resize_longest
from msgnet.learning.vgg import CONTENT_LAYER, Vgg16Features, content_loss, gram_loss, style_grams
from msgnet.model import targets as style_targets
from msgnet.model.net import Net, inspiration_matrix

Progress = Callable[[int, int, dict], None]
"""``(step, steps, figures)``, called after every step; raising stops the fit."""


@dataclass(frozen=True)
class LearnConfig:
    """How a style is fitted; the defaults are the measured choice (docs/learn.md)."""

    steps: int = 120
    lr: float = 0.15  # Adam, relative to the RMS of the starting matrix
    schedule: str = "cosine"  # "cosine" or "constant"
    batch_size: int = 2
    crop_size: int = 128
    photo_size: int = 256  # photos are resized to this shorter side, then cropped
    pool: int = 48  # crops prepared once (one per photo, photos reused); steps cycle through
    style_size: int = 512  # longest side of the style image for the VGG targets
    encoder_size: int = 256  # longest side the encoder sees the style at (M0)
    content_budget: float | None = 0.40  # adaptive content weight; None: fixed weights
    content_weight: float = 1.0  # in content-ratio units (the start, with a budget)
    style_weight: float = 1.0  # in style-ratio units
    budget_rate: float = 0.1  # how fast the adaptive content weight moves (log units)
    param: str = "matrix"  # what Adam moves: "matrix" (M = (W G)^T) or "gram" (G itself)
    affine: bool = True  # also fit the decoder norms' per-style scale and shift
    affine_lr: float = 0.03  # Adam, absolute (log gamma and beta start at 0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if self.param not in ("matrix", "gram"):
            raise ValueError(f"param must be matrix or gram, got {self.param!r}")
        if self.steps < 1 or self.batch_size < 1 or self.pool < self.batch_size:
            raise ValueError("steps and batch_size must be at least 1, pool at least a batch")


@dataclass
class LearnResult:
    """The fitted target (1, C, C), or (1, C, C + P) with the decoder affine
    (:mod:`msgnet.model.targets`), and what the fit measured on its photos."""

    target: torch.Tensor
    seconds: float
    steps: int
    style_ratio: float
    content_ratio: float
    content_weight: float
    config: dict


class PhotoCrops:
    """Random square crops of ordinary photos: the content the fit generalises over."""

    def __init__(self, photos: Sequence[Image.Image | Path], cfg: LearnConfig):
        if not photos:
            raise ValueError("learning a style needs at least one photo")
        self.cfg = cfg
        rng = random.Random(cfg.seed)
        images = [p if isinstance(p, Image.Image) else load_image(p) for p in photos]
        crops = []
        for i in range(cfg.pool):
            img = shorter_side(images[i % len(images)], max(cfg.photo_size, cfg.crop_size))
            w, h = img.size
            x, y = rng.randint(0, w - cfg.crop_size), rng.randint(0, h - cfg.crop_size)
            crop = img.crop((x, y, x + cfg.crop_size, y + cfg.crop_size))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crops.append(image_to_bgr(crop)[0])
        self.tensor = torch.stack(crops)


def shorter_side(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    s = size / min(w, h)
    return img.resize((max(size, round(w * s)), max(size, round(h * s))),
                      Image.Resampling.LANCZOS, reducing_gap=3.0)


def decoder(net: Net) -> torch.nn.Sequential:
    """The generator after the Inspiration layer."""
    return torch.nn.Sequential(*list(net.model)[2:])


def weights_inverse(net: Net) -> torch.Tensor:
    """``W^{-1}`` in float64, to store a fitted ``M`` as the Gram target ``W^{-1} M^T``."""
    return torch.linalg.inv(net.ins.weight.detach()[0].double())


def learn_style(net: Net, vgg: Vgg16Features, style: Image.Image, photos: PhotoCrops,
                cfg: LearnConfig | None = None, progress: Progress | None = None
                ) -> LearnResult:
    """Fit one style's target for ``net`` (left unchanged) on ``photos``; see the module doc."""
    cfg = cfg or photos.cfg
    started = time.perf_counter()
    net = net.eval()
    if net.inspiration_skip:
        raise ValueError("learning a style needs weights without an Inspiration skip")
    gen = torch.Generator().manual_seed(cfg.seed)
    x = photos.tensor
    style_vgg = image_to_bgr(resize_longest(style, cfg.style_size))
    style_enc = image_to_bgr(resize_longest(style, cfg.encoder_size))
    with torch.no_grad():
        targets = style_grams(vgg(style_vgg))
        g0 = net.style_target(style_enc)
        feats = net.model1(x)  # the encoder features of every crop, once
        photo_feats = vgg(x)  # one pass gives the content targets and the reference
        content_feats = photo_feats[CONTENT_LAYER]
        unstylized = float(gram_loss(style_grams(photo_feats), targets))  # batch mean
        as_content = vgg(_style_as_photo(style, cfg.crop_size).expand_as(x),
                         upto=CONTENT_LAYER)
        style_as_content = float(torch.nn.functional.mse_loss(as_content[CONTENT_LAYER],
                                                              content_feats))
        m0 = inspiration_matrix(net.ins.weight, g0)[0]
    fitted = (m0 if cfg.param == "matrix" else g0[0]).clone().requires_grad_(True)
    scale = float(fitted.detach().pow(2).mean().sqrt())
    groups = [{"params": [fitted], "lr": cfg.lr * scale, "base_lr": cfg.lr * scale}]
    affine = torch.zeros(1, 2, net.affine_size, requires_grad=cfg.affine)
    if cfg.affine:
        groups.append({"params": [affine], "lr": cfg.affine_lr, "base_lr": cfg.affine_lr})
    opt = torch.optim.Adam(groups)
    w_ins = net.ins.weight.detach()[0]

    def matrix() -> torch.Tensor:
        return fitted if cfg.param == "matrix" else (w_ins @ fitted).T

    dec = decoder(net)
    for p in net.parameters():
        p.requires_grad_(False)
    net.set_affine(affine if cfg.affine else None)
    fixed = _Fixed(feats, targets, content_feats, unstylized, style_as_content)
    try:
        s_ratio, c_ratio, log_cw = _fit(cfg, dec, matrix, opt, vgg, fixed, gen, progress)
    finally:
        net.set_affine(None)
    with torch.no_grad():
        g = (fitted.detach() if cfg.param == "gram" else
             (weights_inverse(net) @ fitted.detach().double().T).float()).unsqueeze(0)
        if cfg.affine:
            g = style_targets.pack(g, affine.detach())
    return LearnResult(target=g, seconds=time.perf_counter() - started, steps=cfg.steps,
                       style_ratio=s_ratio, content_ratio=c_ratio,
                       content_weight=math.exp(log_cw), config=asdict(cfg))


@dataclass
class _Fixed:
    """What the fit computes once: the crops' encoder features, the style's VGG Grams, the
    crops' content features, and the two references the losses are divided by."""

    feats: torch.Tensor
    targets: list[torch.Tensor]
    content_feats: torch.Tensor
    unstylized: float
    style_as_content: float


def _fit(cfg: LearnConfig, dec: torch.nn.Module, matrix: Callable[[], torch.Tensor],
         opt: torch.optim.Optimizer, vgg: Vgg16Features, fixed: _Fixed,
         gen: torch.Generator, progress: Progress | None) -> tuple[float, float, float]:
    """The optimisation loop; returns the last step's style and content ratios and the
    log content weight."""
    log_cw = math.log(cfg.content_weight)
    feats = fixed.feats
    n, c = feats.shape[0], feats.shape[1]
    order = torch.randperm(n, generator=gen).tolist()
    s_ratio = c_ratio = float("nan")
    for step in range(cfg.steps):
        if cfg.schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        idx = [order[(step * cfg.batch_size + k) % n] for k in range(cfg.batch_size)]
        f = feats[idx]
        b, _, h, w = f.shape
        y = dec(torch.bmm(matrix().unsqueeze(0).expand(b, c, c), f.reshape(b, c, h * w))
                .reshape(b, c, h, w))
        fy = vgg(y)
        s_ratio_t = gram_loss(style_grams(fy), fixed.targets) / fixed.unstylized
        c_ratio_t = (content_loss(fy, {CONTENT_LAYER: fixed.content_feats[idx]})
                     / fixed.style_as_content)
        loss = cfg.style_weight * s_ratio_t + math.exp(log_cw) * c_ratio_t
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        s_ratio, c_ratio = s_ratio_t.item(), c_ratio_t.item()
        if cfg.content_budget is not None:
            log_cw += cfg.budget_rate * math.log(max(c_ratio, 1e-6) / cfg.content_budget)
        if progress is not None:
            progress(step + 1, cfg.steps, {"style_ratio": s_ratio, "content_ratio": c_ratio,
                                           "content_weight": math.exp(log_cw)})
    return s_ratio, c_ratio, log_cw


def _style_as_photo(style: Image.Image, side: int) -> torch.Tensor:
    """The style image squashed to a crop's square: the content ratio's reference output."""
    return image_to_bgr(style.convert("RGB").resize((side, side), Image.Resampling.LANCZOS))

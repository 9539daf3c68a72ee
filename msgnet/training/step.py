"""One training step on the VGG losses, and what the loop does to the network around it: the
start (weights, output bias), the frozen decoder, the moving average and the preset bank."""

from __future__ import annotations

from pathlib import Path

import torch

from msgnet.learning.vgg import (
    CONTENT_LAYER,
    IMAGENET_MEAN_BGR,
    Vgg16Features,
    content_loss,
    style_grams,
    style_loss,
)
from msgnet.model.checkpoint import load_weights
from msgnet.model.net import Net


def load_init_weights(net: Net, path: str | Path) -> None:
    """Start ``net`` from a weights file (ours or the authors')."""
    net.load_state_dict(load_weights(path).net.state_dict())


def decoder_parameters(net: Net) -> list[torch.nn.Parameter]:
    """The generator after the Inspiration layer: what ``--freeze-decoder`` keeps fixed."""
    return [p for layer in list(net.model)[2:] for p in layer.parameters()]


def init_output_bias(net: Net) -> None:
    """Start the generator's last bias at the ImageNet mean (BGR) instead of ~0.

    With the default init the output starts black, and Adam at lr 1e-3 moves a bias by ~1e-3 a
    step: measured here, after 250 steps the mean output was still ~40 of 255. Starting at
    mid-grey removes that warm-up; nothing else in the recipe changes.
    """
    with torch.no_grad():
        net.model[-1].conv2d.bias.copy_(torch.tensor(IMAGENET_MEAN_BGR))


def update_ema(ema: Net, net: Net, decay: float) -> None:
    """``ema ← decay·ema + (1 − decay)·net``, parameter by parameter (no buffers to average:
    instance norm keeps no running statistics)."""
    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters(), strict=True):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def compute_presets(net: Net, styles: dict[str, torch.Tensor], device: torch.device
                    ) -> dict[str, torch.Tensor]:
    """The preset bank: Gram target of each training style with the trained encoder."""
    net.eval()
    with torch.inference_mode():
        return {name: net.style_target(img.to(device)).float().cpu()
                for name, img in styles.items()}


def gram_targets(vgg: Vgg16Features, images: torch.Tensor) -> list[torch.Tensor]:
    """The style-loss targets of ``images``: their VGG Grams, (B, C, C) per layer, constants,
    computed once up front for each style image."""
    with torch.no_grad():
        return style_grams(vgg(images))


def train_step(net: Net, vgg: Vgg16Features, optimizer: torch.optim.Optimizer,
               x: torch.Tensor, encoder_style: torch.Tensor, targets: list[torch.Tensor],
               content_weight: float, style_weight: float, use_amp: bool = False,
               content_upto: str = CONTENT_LAYER) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a content batch and one style; returns the weighted losses.
    Gradients are on whatever the caller's grad mode (a program may have turned it off)."""
    with torch.enable_grad():
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
            net.set_target(net.style_target(encoder_style))
            y = net(x)
            feats_y = vgg(y)
            with torch.no_grad():
                feats_x = vgg(x, upto=content_upto)
        feats_y = {k: f.float() for k, f in feats_y.items()}
        c_loss = content_weight * content_loss(feats_y,
                                               {k: f.float() for k, f in feats_x.items()})
        s_loss = style_weight * style_loss(feats_y, targets)
        optimizer.zero_grad(set_to_none=True)
        (c_loss + s_loss).backward()
    optimizer.step()
    return c_loss.detach(), s_loss.detach()

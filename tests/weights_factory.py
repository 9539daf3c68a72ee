"""Seeded random MSG-Net weights for tests, in our format and in the authors' layout."""

from __future__ import annotations

from pathlib import Path

import torch

from msgnet.model.checkpoint import save_weights
from msgnet.model.net import Net

TINY_NGF = 8
TINY_PRESETS = ("candy", "mosaic", "udnie")


def seeded_pixels(*shape: int, seed: int) -> torch.Tensor:
    """Uniform 0..255 pixel values of ``shape``, the same for the same seed."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 255


def make_net(ngf: int = TINY_NGF, seed: int = 0) -> Net:
    torch.manual_seed(seed)
    net = Net(ngf=ngf)
    # the default init leaves outputs near 0; a larger last bias makes images non-black
    with torch.no_grad():
        net.model[-1].conv2d.bias.uniform_(60.0, 190.0)
    return net.eval()


def make_tiny_weights(path: str | Path, ngf: int = TINY_NGF, seed: int = 0,
                      presets: tuple[str, ...] = TINY_PRESETS, half: bool = True,
                      metadata: dict | None = None) -> Path:
    """Write a small weights file in our format with a few presets (random style images)."""
    net = make_net(ngf, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    bank = {}
    with torch.inference_mode():
        for name in presets:
            style = torch.rand(1, 3, 64, 64, generator=gen) * 255
            bank[name] = net.style_target(style)
    meta = {"source": "tests: seeded random weights", **(metadata or {})}
    return save_weights(path, net, bank, meta, half=half)


def save_tiny_vgg(path: str | Path, seed: int = 0) -> Path:
    """A tiny random VGG16 loss network (widths 4, 8, 8, 8) in the shared file's format."""
    from msgnet.learning.vgg import Vgg16Features

    torch.manual_seed(seed)
    torch.save(Vgg16Features((4, 8, 8, 8)).state_dict(), path)
    return Path(path)


def official_layout_state_dict(ngf: int = TINY_NGF, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict shaped like the authors' 21styles.model: every parameter under both
    encoder names (``model1.*`` and ``model.0.*``, plus ``ins``/``model.1``) and InstanceNorm
    running statistics for each distinct norm layer (156 keys, 64 running stats at ngf=128)."""
    net = make_net(ngf, seed)
    state = dict(net.state_dict())
    gen = torch.Generator().manual_seed(seed + 2)
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.InstanceNorm2d):
            c = module.num_features
            state[f"{name}.running_mean"] = torch.randn(c, generator=gen)
            state[f"{name}.running_var"] = torch.rand(c, generator=gen) + 0.5
    return state

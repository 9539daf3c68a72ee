"""The machine's matmul rate and the model's arithmetic, for achieved GFLOP/s."""

from __future__ import annotations

import torch

from msgnet.model.net import Net
from workbench.bench.inputs import median_time


def matmul_gflops(n: int = 2048, runs: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    med, _ = median_time(lambda: a @ b, runs, 1)
    return 2 * n ** 3 / med / 1e9


def model_flops(net: Net, hw: tuple[int, int]) -> float:
    """FLOPs of one eager forward at ``hw`` (convolutions + Inspiration), counted at 64² on
    the real graph with hooks and scaled by pixels (every layer's output scales exactly)."""
    flops = 0.0

    def hook(module: torch.nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal flops
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        flops += 2.0 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, torch.nn.Conv2d)]
    try:
        x = torch.rand(1, 3, 64, 64) * 255
        with torch.inference_mode():
            g = net.style_target(x)
            flops = 0.0
            net.stylize(x, g)
    finally:
        for h in handles:
            h.remove()
    c = net.channels
    flops += 2.0 * c * c * 16 * 16  # Inspiration: (C x C) @ (C x H/4*W/4)
    return flops * hw[0] * hw[1] / (64 * 64)



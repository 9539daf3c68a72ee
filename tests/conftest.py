"""Shared fixtures. Keep each section small; add new ones under their own heading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from weights_factory import make_tiny_weights

# ------------------------------------------------------------------ msgnet: weights and images


@pytest.fixture(scope="session")
def tiny_weights_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded random weights in our format (ngf=8, presets candy/mosaic/udnie)."""
    return make_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")


def make_rng_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A seeded noise image with some smooth structure (gradients), so resizing is visible."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1),
                     (xx + yy) / max(width + height - 2, 1)], axis=-1) * 200.0
    noise = rng.integers(0, 56, size=(height, width, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    return img if mode == "RGB" else img.convert(mode)


@pytest.fixture(scope="session")
def rng_image() -> Callable[..., Image.Image]:
    """``rng_image(width, height, seed=0, mode="RGB")`` -> a deterministic test picture."""
    return make_rng_image


@pytest.fixture(scope="module")
def torch_single_thread():
    """Run a module's tiny forwards on one thread: on this shared 2-core machine two threads
    spin against each other (and everyone else) and were measured ~5x slower on test sizes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

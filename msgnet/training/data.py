"""Training data: random crops of the content photos, the style images, and which style each
step trains on."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image

from msgnet.imageio import image_to_bgr, load_image, resize_longest


class ContentSampler:
    """Random ``crop`` crops of photos resized so their shorter side is ``size``.

    Each photo is decoded and resized once and kept (628 photos at 256 px are ~180 MB), so a
    step only crops; the random draws are the same as decoding every time.
    """

    def __init__(self, files: list[Path], size: int, rng: random.Random,
                 crop: int | None = None):
        if not files:
            raise ValueError("no content images found")
        self.files, self.size, self.rng = files, size, rng
        self.crop = crop or size
        self.order: list[int] = []
        self._resized: dict[int, Image.Image] = {}

    def _next_index(self) -> int:
        if not self.order:
            self.order = list(range(len(self.files)))
            self.rng.shuffle(self.order)
        return self.order.pop()

    def _photo(self, index: int) -> Image.Image:
        img = self._resized.get(index)
        if img is None:
            img = load_image(self.files[index])
            w, h = img.size
            s = self.size / min(w, h)
            # LANCZOS as serving resizes (msgnet.imageio.resize_longest)
            img = img.resize((max(self.size, round(w * s)), max(self.size, round(h * s))),
                             Image.Resampling.LANCZOS, reducing_gap=3.0)
            self._resized[index] = img
        return img

    def sample(self) -> torch.Tensor:
        img = self._photo(self._next_index())
        w, h = img.size
        x, y = self.rng.randint(0, w - self.crop), self.rng.randint(0, h - self.crop)
        img = img.crop((x, y, x + self.crop, y + self.crop))
        if self.rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image_to_bgr(img)[0]

    def batch(self, n: int) -> torch.Tensor:
        return torch.stack([self.sample() for _ in range(n)])


def step_style(step: int, presets: list[str], extras: list[str], share: float,
               order: list[int]) -> str:
    """The style of 0-based ``step``: presets cycle; with extras, ``share`` of the steps
    (spread evenly) go through ``order``, a fixed permutation of the extras. A function of the
    step alone, so an exact resume draws the same styles."""
    if not extras or share <= 0:
        return presets[step % len(presets)]
    extra_before = int(step * share)  # extra steps among steps 0..step-1
    if int((step + 1) * share) > extra_before:
        return extras[order[extra_before % len(order)]]
    return presets[(step - extra_before) % len(presets)]


def load_styles(files: list[Path], style_size: int) -> dict[str, torch.Tensor]:
    """name -> (1, 3, H, W) BGR tensor at ``style_size`` longest side."""
    return {p.stem: image_to_bgr(resize_longest(load_image(p), style_size)) for p in files}

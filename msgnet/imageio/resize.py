"""Sizes: the longest side of an image, kept in proportion."""

from __future__ import annotations

from PIL import Image


def fit_longest(width: int, height: int, longest: int) -> tuple[int, int]:
    """Size with the longest side ``longest`` and the same aspect ratio (each side >= 1)."""
    if width < 1 or height < 1 or longest < 1:
        raise ValueError(f"sizes must be positive, got {width}x{height} -> {longest}")
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_longest(img: Image.Image, longest: int) -> Image.Image:
    """Resize (up or down, LANCZOS) so the longest side is ``longest``; no-op if it is."""
    size = fit_longest(img.width, img.height, longest)
    if size == img.size:
        return img
    # reducing_gap: a cheap integer reduce first on big downscales, visually identical
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)

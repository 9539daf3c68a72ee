"""Preset previews: each preset applied to a picture the project owns.

We may not ship the style artworks themselves, so a preset is shown by stylizing a landscape
that this module draws procedurally (sky, sun, mountains, lake, trees, a house). The scene is
deterministic, so previews are reproducible from the weights alone.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFilter

from msgnet.imageio import bgr_to_image, image_to_bgr
from msgnet.inference.stylize import run_model
from msgnet.model.checkpoint import load_weights


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore


def demo_scene(width: int = 384, height: int = 288, seed: int = 7) -> Image.Image:
    """A colourful landscape with edges, flat areas and gradients to show a style on."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    horizon = int(height * 0.58)
    for y in range(horizon):  # sky gradient
        draw.line([(0, y), (width, y)], fill=_lerp((70, 120, 200), (250, 200, 150), y / horizon))
    sun = (int(width * 0.72), int(height * 0.26))
    r = height // 9
    draw.ellipse([sun[0] - r, sun[1] - r, sun[0] + r, sun[1] + r], fill=(255, 230, 120))
    for k, (colour, base) in enumerate((((110, 110, 150), 0.30), ((70, 100, 90), 0.42))):
        pts = [(0, horizon)]
        for x in range(0, width + 16, 16):
            peak = height * base + math.sin(x / (37 + 20 * k) + k) * height * 0.07
            pts.append((x, int(peak + rng.uniform(-6, 6))))
        pts.append((width, horizon))
        draw.polygon(pts, fill=colour)
    for y in range(horizon, height):  # lake, darker towards the viewer
        t = (y - horizon) / (height - horizon)
        draw.line([(0, y), (width, y)], fill=_lerp((120, 150, 200), (30, 60, 110), t))
    for _ in range(14):  # ripples
        y = rng.randint(horizon + 4, height - 4)
        x = rng.randint(0, width - 40)
        draw.line([(x, y), (x + rng.randint(15, 60), y)], fill=(200, 215, 235), width=1)
    ground = [(0, horizon - 4), (int(width * 0.45), horizon - 10), (int(width * 0.55), horizon),
              (0, horizon + 30)]
    draw.polygon(ground, fill=(60, 130, 60))
    hx, hy = int(width * 0.16), horizon - 30
    draw.rectangle([hx, hy, hx + 44, hy + 30], fill=(200, 70, 50))
    draw.polygon([(hx - 6, hy), (hx + 22, hy - 22), (hx + 50, hy)], fill=(90, 50, 40))
    draw.rectangle([hx + 8, hy + 10, hx + 18, hy + 20], fill=(250, 230, 140))
    draw.rectangle([hx + 28, hy + 12, hx + 38, hy + 30], fill=(70, 40, 30))
    for i in range(5):  # trees
        tx = int(width * (0.30 + 0.045 * i))
        ty = horizon - 6 - (i % 2) * 6
        draw.rectangle([tx - 2, ty, tx + 2, ty + 12], fill=(80, 50, 30))
        draw.polygon([(tx - 12, ty + 2), (tx, ty - 30), (tx + 12, ty + 2)], fill=(30, 90, 40))
    return img.filter(ImageFilter.SMOOTH)


def render_previews(weights: str | Path, out_dir: str | Path, size: int = 384,
                    quality: int = 85) -> list[Path]:
    """Write ``<out_dir>/<preset>.jpg`` for every preset in the weights file."""
    loaded = load_weights(weights)
    if not loaded.presets:
        raise ValueError(f"{weights} has no presets")
    scene = demo_scene(size, size * 3 // 4)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, target in sorted(loaded.presets.items()):
        styled = bgr_to_image(run_model(loaded.net, image_to_bgr(scene), target))
        path = out / f"{name}.jpg"
        styled.save(path, quality=quality, optimize=True)
        written.append(path)
    scene.save(out / "_source.jpg", quality=quality, optimize=True)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", required=True)
    p.add_argument("-o", "--out-dir", default="presets/previews")
    p.add_argument("--size", type=int, default=384)
    args = p.parse_args(argv)
    try:
        with torch.no_grad():  # not set_grad_enabled: main() also runs inside other programs
            written = render_previews(args.weights, args.out_dir, args.size)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

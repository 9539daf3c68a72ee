"""Draw docs/img/tiling.jpg: how tiled inference cuts an image, and what it changes.

    .venv/bin/python -m workbench.tiling_figure [--weights weights/msgnet-21styles.pt]

The picture is the project's own procedural scene (msgnet.preview.demo_scene) at 1024², run
once untiled and once with the served tiling settings forced on (512 px tiles, 40 px halo,
16 px blend bands, statistics from a 768 px thumbnail). Panels: the tiled output with the tile
grid drawn on it, the untiled output, their difference amplified 8x, and a 1:1 crop around the
point where four tiles meet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from msgnet.imageio import bgr_to_image, image_to_bgr
from msgnet.inference.fast import FastMSGNet
from msgnet.inference.tiling import TileConfig, spans, tiled_stylize_one
from msgnet.model.checkpoint import load_weights
from msgnet.preview import demo_scene
from msgnet.training.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]

SIZE = 1024
PANEL = 400
CROP = 200  # 1:1 crop around the centre, where four tiles meet


def _label(img: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (img.width, img.height + 24), "white")
    out.paste(img, (0, 24))
    ImageDraw.Draw(out).text((6, 6), text, fill="black")
    return out


def _grid(img: Image.Image, cfg: TileConfig) -> Image.Image:
    """Draw the tile borders (lines) with their blend bands, and the area the first tile reads
    (its core, blend band and halo) in yellow, scaled to the panel."""
    scale = img.width / SIZE
    draw = ImageDraw.Draw(img, "RGBA")
    cuts = spans(SIZE, cfg.tile, cfg.halo, cfg.blend)
    for span in cuts[1:]:
        c = span.core[0] * scale
        b = cfg.blend * scale
        draw.rectangle([c - b, 0, c + b, img.height], fill=(255, 255, 255, 70))
        draw.rectangle([0, c - b, img.width, c + b], fill=(255, 255, 255, 70))
        draw.line([c, 0, c, img.height], fill=(255, 255, 255, 230), width=1)
        draw.line([0, c, img.width, c], fill=(255, 255, 255, 230), width=1)
    first = cuts[0]
    r0, r1 = first.read[0] * scale, first.read[1] * scale
    draw.rectangle([r0, r0, r1 - 1, r1 - 1], outline=(255, 210, 0, 255), width=2)
    return img


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "msgnet-21styles.pt")
    p.add_argument("--preset", default="candy")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "tiling.jpg")
    args = p.parse_args(argv)
    loaded = load_weights(args.weights, map_location="cpu")
    runner = FastMSGNet(loaded.net)
    gram = loaded.presets[args.preset].float().reshape(loaded.net.channels, -1)
    x = image_to_bgr(demo_scene(SIZE, SIZE))
    cfg = TileConfig(threshold_pixels=0)
    with torch.inference_mode():
        full = runner(x, gram).clamp(0, 255)
        tiled = tiled_stylize_one(runner, x, gram, cfg).clamp(0, 255)
    db = psnr(tiled, full)
    diff = bgr_to_image(((tiled - full).abs() * 8).clamp(0, 255))
    small = (PANEL, PANEL)
    c0, c1 = SIZE // 2 - CROP // 2, SIZE // 2 + CROP // 2
    crop = bgr_to_image(tiled[..., c0:c1, c0:c1]).resize(small, Image.Resampling.NEAREST)
    panels = [
        _label(_grid(bgr_to_image(tiled).resize(small, Image.Resampling.LANCZOS), cfg),
               f"tiled: {cfg.tile} px tiles (lines), blend bands, yellow: what tile 1 reads"),
        _label(bgr_to_image(full).resize(small, Image.Resampling.LANCZOS),
               "untiled, the same 1024x1024 image"),
        _label(diff.resize(small, Image.Resampling.LANCZOS),
               f"|tiled - untiled| x 8 (PSNR {db:.1f} dB)"),
        _label(crop, f"tiled, centre {CROP} px at 2x: four tiles meet here"),
    ]
    sheet = Image.new("RGB", (sum(pn.width for pn in panels) + 8 * 3, panels[0].height),
                      "white")
    xpos = 0
    for pn in panels:
        sheet.paste(pn, (xpos, 0))
        xpos += pn.width + 8
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(f"{args.out}: PSNR tiled vs untiled {db:.1f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

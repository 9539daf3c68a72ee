"""The clip in docs/animation.md: a slow pan over a held-out photo, stylized as a GIF by the
CLI's code path (shared first-frame statistics), shown beside the input.

    .venv/bin/python -m workbench.clip_figure \
        [--photo ../shared/data/content/bsds500/val_101085.jpg]
        [-o docs/img/clip_candy.gif] [--preset candy]

Without the photo (a checkout without ../shared) the generated scene of fakes/clips.py
is panned instead. Writes the input clip, runs msgnet.animation.stylize.stylize_clip, and lays the
two side by side in one GIF with the input's timing.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fakes import clips as cs

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "data" / "content" / "bsds500" / "val_101085.jpg"
WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"


def pan_frames(photo: Path | None, n: int, width: int, height: int) -> list[Image.Image]:
    """``n`` crops panning left to right across the photo (or the generated scene)."""
    if photo is not None and photo.is_file():
        img = Image.open(photo).convert("RGB")
        scale = height / img.height
        img = img.resize((max(width + n, round(img.width * scale)), height), Image.LANCZOS)
        span = img.width - width
        return [img.crop((round(k * span / max(1, n - 1)), 0,
                          round(k * span / max(1, n - 1)) + width, height)) for k in range(n)]
    return [Image.fromarray(f) for f in cs.frames(n, width, height, pan=1.5)]


def main(argv: list[str] | None = None) -> int:
    from msgnet.animation.stylize import stylize_clip
    from msgnet.inference.stylize import Stylizer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", type=Path, default=PHOTO)
    p.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "img" / "clip_candy.gif")
    p.add_argument("--preset", default="candy")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--preview", type=Path, default=None,
                   help="also write every 4th pair stacked as a PNG, to look at")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    frames = pan_frames(args.photo, args.frames, args.width, args.height)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100,
                   loop=0)
    stylizer = Stylizer.from_file(WEIGHTS)
    result = stylize_clip(buf.getvalue(), stylizer, stylizer.preset_target(args.preset),
                          size=args.width, measure_flicker=True)
    out = Image.open(io.BytesIO(result.body))
    pairs = []
    for k, frame in enumerate(frames):
        out.seek(min(k, out.n_frames - 1))
        pair = Image.new("RGB", (2 * args.width + 4, args.height), (255, 255, 255))
        pair.paste(frame, (0, 0))
        pair.paste(out.convert("RGB").resize(frame.size), (args.width + 4, 0))
        pairs.append(pair.quantize(256, method=Image.Quantize.FASTOCTREE,
                                   dither=Image.Dither.NONE))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    pairs[0].save(args.output, save_all=True, append_images=pairs[1:], duration=100, loop=0,
                  optimize=True)
    if args.preview is not None:
        step = max(1, len(pairs) // 4)
        strip = np.concatenate([np.asarray(p.convert("RGB")) for p in pairs[::step]], axis=0)
        Image.fromarray(strip).save(args.preview)
    print(f"{args.output}: {len(pairs)} frames, {args.output.stat().st_size / 1024:.0f} kB, "
          f"flicker {result.flicker.ratio:.2f}, {result.elapsed_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The README's picture of own styles: for each style picture, the style itself, the photo with
the picture sent as an upload (its plain encoder Gram), as an upload with the style predictor's
affine (what the server does when the weights have one), and with the style learned from it.

    .venv/bin/python -m workbench.learn_figure PHOTO --store /tmp/learned \
        --style-dir ../shared/data/styles/unseen_dev --styles a b c -o docs/img/learned.jpg

The learned styles come from a style store (``workbench/learn_bench.py --store`` or
``python -m msgnet learn``), under the style files' names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from msgnet.imageio import load_image
from msgnet.inference.stylize import Stylizer
from msgnet.learning.style_store import StyleStore

ROOT = Path(__file__).resolve().parents[1]

CELL, GUTTER, TITLE = 224, 6, 22


def _fit(img: Image.Image) -> Image.Image:
    thumb = img.copy()
    thumb.thumbnail((CELL - 2 * GUTTER, CELL - 2 * GUTTER), Image.Resampling.LANCZOS)
    return thumb


def figure(stylizer: Stylizer, store: StyleStore, photo: Image.Image, style_dir: Path,
           names: list[str], size: int) -> Image.Image:
    predicted = stylizer.predictor is not None
    titles = ["style picture", "upload, plain", "upload (predictor)", "learned"]
    if not predicted:
        titles.remove("upload (predictor)")
    rows = []
    for name in names:
        style = load_image(next(style_dir.glob(f"{name}.*")))
        upload = stylizer.stylize(photo, stylizer.style_target(style, predict=False), size)
        instant = [stylizer.stylize(photo, stylizer.style_target(style), size)] if predicted else []
        learned = stylizer.stylize(photo, store.load(name, fingerprint=stylizer.fingerprint)
                                   .target, size)
        rows.append([style, upload, *instant, learned])
    sheet = Image.new("RGB", (CELL * len(titles), TITLE + CELL * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)
    for j, title in enumerate(titles):
        draw.text((j * CELL + GUTTER, 3), title, fill=(0, 0, 0), font=font)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            thumb = _fit(img)
            sheet.paste(thumb, (j * CELL + (CELL - thumb.width) // 2,
                                TITLE + i * CELL + (CELL - thumb.height) // 2))
    return sheet


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo", type=Path)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--style-dir", type=Path, required=True)
    p.add_argument("--styles", nargs="+", required=True)
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "msgnet-21styles.pt")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    stylizer = Stylizer.from_file(args.weights, max_size=max(512, args.size))
    sheet = figure(stylizer, StyleStore(args.store), load_image(args.photo), args.style_dir,
                   args.styles, args.size)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, quality=88)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

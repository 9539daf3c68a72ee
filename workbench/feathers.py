"""Why the feathers preset is never identified (issue 43), from its Grams and its pictures.

Identification asks whether an output's VGG Gram (relu1_2..relu4_3) is nearer its own style
picture's than any other preset's. This script measures, on the bar's photos (BSDS ``val_``
1-8 at 512 px), for the feathers preset:

* where feathers sits among the 21 style pictures: its nearest other picture, and how far an
  unstylized photo is from it compared with the others (a style far from every photo needs an
  output to move further before it is nearer that style than a central one);
* for each output kind (the preset as shipped; the picture learned by
  :mod:`msgnet.learning.learn`, as an upload is; Gatys' pixel optimisation, the ceiling a
  feed-forward network approximates, on 2 photos at 256 px), the rank of feathers among the
  21, the nearest style, and the per-layer Gram distances to feathers and to that nearest style;
* simple picture statistics: the share of near-white pixels and the mean saturation.

    .venv/bin/python -m workbench.feathers --weights weights/msgnet-21styles.pt \\
        --vgg ../shared/weights/vgg16_caffe_conv1_1-conv4_3.pt \\
        --styles ../shared/data/styles/21styles --photos ../shared/data/content/bsds500 \\
        -o docs/feathers.json --figure docs/img/feathers.jpg

Prints a table and writes the JSON; the figure shows photo | preset | learned | Gatys.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from msgnet.imageio import bgr_to_image, image_to_bgr, list_images, load_image, resize_longest
from msgnet.inference.stylize import Stylizer
from msgnet.learning.learn import LearnConfig, PhotoCrops, learn_style
from msgnet.learning.vgg import Vgg16Features, content_loss, style_grams
from msgnet.model.checkpoint import load_weights
from msgnet.training.metrics import gatys

STYLE = "feathers"
LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def layer_distances(grams: list[torch.Tensor], target: list[torch.Tensor]) -> list[float]:
    """Per-layer MSE between Grams (their sum is the style loss identification ranks by)."""
    return [float(((g - t) ** 2).mean()) for g, t in zip(grams, target, strict=True)]


def ranking(grams: list[torch.Tensor], targets: dict[str, list[torch.Tensor]]) -> list[str]:
    return sorted(targets, key=lambda n: sum(layer_distances(grams, targets[n])))


def picture_stats(bgr: torch.Tensor) -> dict:
    """Share of near-white pixels (all channels > 220) and mean HSV saturation (0..1)."""
    img = bgr_to_image(bgr)
    white = float((np.asarray(img) > 220).all(2).mean())
    sat = float(np.asarray(img.convert("HSV"))[..., 1].mean()) / 255
    return {"white": round(white, 3), "saturation": round(sat, 3)}


def describe(kind: str, photo: str, out: torch.Tensor, vgg: Vgg16Features,
             targets: dict[str, list[torch.Tensor]], c_feats: dict) -> dict:
    with torch.inference_mode():
        feats = vgg(out)
    grams = style_grams(feats)
    order = ranking(grams, targets)
    nearest = order[0] if order[0] != STYLE else order[1]
    return {"kind": kind, "photo": photo, "rank": order.index(STYLE) + 1, "nearest": nearest,
            "to_feathers": layer_distances(grams, targets[STYLE]),
            "to_nearest": layer_distances(grams, targets[nearest]),
            "content": float(content_loss(feats, c_feats)), **picture_stats(out)}


def save_figure(rows: list[list[Image.Image]], path: str, height: int = 200) -> None:
    """Rows of pictures at one height, left-aligned, on white."""
    rows = [[im.resize((round(im.width * height / im.height), height)) for im in row]
            for row in rows]
    sheet = Image.new("RGB", (max(sum(im.width for im in row) for row in rows),
                              height * len(rows)), "white")
    for y, row in enumerate(rows):
        x = 0
        for im in row:
            sheet.paste(im, (x, y * height))
            x += im.width
    sheet.save(path, quality=88)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--vgg", required=True)
    p.add_argument("--styles", required=True, help="the 21 preset pictures")
    p.add_argument("--photos", required=True, help="BSDS500: val_ 1-8 judge, others learn")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--gatys-photos", type=int, default=2)
    p.add_argument("--gatys-steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--figure")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    loaded = load_weights(args.weights, predictor=False)
    stylizer = Stylizer(loaded, max_size=args.size, default_size=args.size)
    vgg = Vgg16Features.from_file(args.vgg).eval()
    files = {f.stem: f for f in list_images(args.styles)}
    pictures = {n: resize_longest(load_image(f), 512) for n, f in files.items()}
    with torch.no_grad():  # not inference mode: Gatys differentiates against them
        targets = {n: style_grams(vgg(image_to_bgr(im))) for n, im in pictures.items()}
    photos = [f for f in list_images(args.photos) if f.name.startswith("val_")][:8]
    learn_photos = [f for f in list_images(args.photos) if not f.name.startswith("val_")][:48]

    between = {n: sum(layer_distances(targets[STYLE], targets[n])) for n in targets if n != STYLE}
    report: dict = {"style": STYLE, "layers": LAYERS, "weights": args.weights,
                    "feathers_picture": picture_stats(image_to_bgr(pictures[STYLE])),
                    "nearest_pictures": sorted(between, key=between.get)[:3],
                    "picture_distances": between}
    # how far a plain photo is from each style picture, as a multiple of the median style's
    unstyled: dict[str, list[float]] = {n: [] for n in targets}
    rows: list[dict] = []
    figure: list[list[Image.Image]] = []
    learned = learn_style(loaded.net, vgg, load_image(files[STYLE]),
                          PhotoCrops(learn_photos, LearnConfig()))
    report["learn_seconds"] = round(learned.seconds, 1)
    for i, path in enumerate(photos):
        photo = resize_longest(load_image(path), args.size)
        c = image_to_bgr(photo)
        with torch.inference_mode():
            c_feats = vgg(c)
        for n in targets:
            unstyled[n].append(sum(layer_distances(style_grams(c_feats), targets[n])))
        preset, fitted = stylizer.run([c, c], [loaded.presets[STYLE], learned.target])
        rows.append(describe("preset", path.name, preset, vgg, targets, c_feats))
        rows.append(describe("learned", path.name, fitted, vgg, targets, c_feats))
        cells = [photo, bgr_to_image(preset), bgr_to_image(fitted)]
        if i < args.gatys_photos:
            small = image_to_bgr(resize_longest(photo, 256))
            with torch.inference_mode():
                s_feats = vgg(small)
            ref = gatys(vgg, small, targets[STYLE], args.gatys_steps)
            rows.append(describe("gatys_256", path.name, ref, vgg, targets, s_feats))
            rows.append(describe("preset_256", path.name, stylizer.run(
                [small], [loaded.presets[STYLE]])[0], vgg, targets, s_feats))
            cells.append(bgr_to_image(ref).resize(photo.size))
        figure.append(cells)
        print(f"{path.name}: " + ", ".join(f"{r['kind']} rank {r['rank']} (nearest {r['nearest']})"
                                           for r in rows if r["photo"] == path.name), flush=True)
    median = {n: statistics.median(v) for n, v in unstyled.items()}
    mid = statistics.median(median.values())
    report["photo_to_picture_over_median"] = {n: round(v / mid, 2) for n, v in median.items()}
    report["outputs"] = rows
    summary = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        summary[kind] = {
            "identified": sum(r["rank"] == 1 for r in mine), "of": len(mine),
            "median_rank": statistics.median(r["rank"] for r in mine),
            "nearest": max(set(r["nearest"] for r in mine),
                           key=[r["nearest"] for r in mine].count),
            "to_feathers_over_nearest": [round(statistics.fmean(
                r["to_feathers"][k] / r["to_nearest"][k] for r in mine), 2) for k in range(4)],
            "white": round(statistics.fmean(r["white"] for r in mine), 3),
            "saturation": round(statistics.fmean(r["saturation"] for r in mine), 3)}
    report["summary"] = summary
    report["seconds"] = round(time.monotonic() - started, 1)
    Path(args.output).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("feathers_picture", "nearest_pictures",
                                             "summary")}, indent=1))
    if args.figure:
        save_figure(figure, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

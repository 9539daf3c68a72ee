"""Quality report: how close our feed-forward MSG-Net gets to what it approximates.

For held-out content photos and a set of styles, the VGG16 loss network measures the style loss
(sum over relu1_2..relu4_3 of the MSE between Gram matrices) and the content loss (MSE at
relu2_2) of

* **model**: our output at ``--size`` (longest side),
* **unstylized**: the content photo itself (the style loss to beat),
* **style_image**: the style image resized to the photo (the content loss to beat),
* **gatys**: direct optimisation of the pixels on the same losses (Gatys et al.), the quality
  a feed-forward network is approximating. It costs hundreds of VGG passes per pair, so it runs on
  a subset at ``--gatys-size`` and is compared with the model at that same size.

Whether the styles can be told apart is measured too: identification (is each output nearest its
own style image?), separation (are two styles' outputs of a photo as far apart as the styles?),
overall and per style; every measure is in :mod:`msgnet.training.metrics`. Outputs come from
:class:`Stylizer`, the code path the server runs, so the report is about what users get.

Writes a JSON report and a gallery PNG (rows: contents, columns: styles).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from msgnet.imageio import bgr_to_image, image_to_bgr, list_images, load_image, resize_longest
from msgnet.inference.stylize import MIN_SIZE, Stylizer, run_model, trained_style_size
from msgnet.learning.vgg import Vgg16Features, content_loss, gram_loss, style_grams
from msgnet.model.checkpoint import load_weights
from msgnet.training.metrics import Losses, Output, gatys, measure, style_figures


class EvaluationInputError(ValueError):
    """The photos or styles asked for are not there; the CLI prints it as one line."""


def make_gallery(rows: list[list[Image.Image]], col_titles: list[str], cell: int = 192,
                 gutter: int = 6) -> Image.Image:
    """Grid of thumbnails, titles on top; each image is fitted inside its ``cell`` square less a
    ``gutter`` on every side, so portrait and landscape photos never touch their neighbours."""
    title_h = 22
    inner = cell - 2 * gutter
    grid = Image.new("RGB", (cell * len(col_titles), title_h + cell * len(rows)), "white")
    draw = ImageDraw.Draw(grid)
    for j, title in enumerate(col_titles):
        draw.text((j * cell + gutter, 5), title[:cell // 6], fill=(0, 0, 0))
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            thumb = img.copy()
            thumb.thumbnail((inner, inner), Image.Resampling.LANCZOS)
            x = j * cell + (cell - thumb.width) // 2
            y = title_h + i * cell + (cell - thumb.height) // 2
            grid.paste(thumb, (x, y))
    return grid


def evaluate(weights: str, content_dir: str, style_dir: str, vgg_path: str, out_json: str,
             gallery: str | None, size: int = 512, style_size: int = 512,
             styles: list[str] | None = None, limit: int = 8, gatys_pairs: int = 2,
             gatys_steps: int = 300, gatys_size: int = 256, threads: int | None = None,
             gallery_styles: list[str] | None = None, content_prefix: str = "",
             uploads: bool = False, upload_size: int | None = None,
             learned: dict[str, torch.Tensor] | None = None, content_skip: int = 0,
             predictor: bool = True) -> dict:
    """Stylize held-out photos with each style through the served code path; write the report.

    Presets come from the weights' bank; a style the bank lacks (and every style with
    ``uploads``) is encoded from its image at ``upload_size`` (default: the size the weights'
    encoder was trained at, as the server encodes an upload); the VGG targets are always at
    ``style_size``. ``learned`` (name -> target, every evaluated style) measures learned styles
    (:mod:`msgnet.learning.learn`) as a third kind. ``content_skip`` leaves out the first matching
    photos (those another protocol tuned on). ``predictor`` False leaves out the style
    predictor beside the weights (:mod:`msgnet.model.predictor`), which uploads use as served.
    """
    if threads:
        torch.set_num_threads(threads)
    t0 = time.monotonic()
    loaded = load_weights(weights, predictor=predictor)
    net = loaded.net
    top = max(size, gatys_size, MIN_SIZE)
    upload_size = upload_size or trained_style_size(loaded.metadata)
    stylizer = Stylizer(loaded, max_size=top, default_size=top, default_style_size=upload_size)
    vgg = Vgg16Features.from_file(vgg_path)
    style_files = {p.stem: p for p in list_images(style_dir)}
    names = styles or sorted(style_files)
    missing = [n for n in names if n not in style_files]
    if missing:
        raise EvaluationInputError(f"style images not found in {style_dir}: "
                                   f"{', '.join(missing)}")
    contents = [p for p in list_images(content_dir)
                if p.name.startswith(content_prefix)][content_skip:content_skip + limit]
    if not contents:
        raise EvaluationInputError(f"no content images in {content_dir}")

    style_imgs = {n: resize_longest(load_image(style_files[n]), style_size) for n in names}
    with torch.inference_mode():
        vgg_targets = {n: style_grams(vgg(image_to_bgr(img))) for n, img in style_imgs.items()}
    encoded = {n: stylizer.style_target(style_imgs[n] if upload_size == style_size
                                        else load_image(style_files[n]), upload_size)
               for n in names}
    gen_targets = {n: loaded.presets[n] if n in loaded.presets else encoded[n] for n in names}
    kinds = {"preset": gen_targets, **({"upload": encoded} if uploads else {})}
    if learned is not None:
        unlearned = [n for n in names if n not in learned]
        if unlearned:
            raise EvaluationInputError(f"no learned style for {', '.join(unlearned)}")
        kinds["learned"] = learned

    pairs, rows = [], []
    outputs: dict[str, list[Output]] = {k: [] for k in kinds}
    unstylized: dict[tuple[str, str], Losses] = {}
    as_style: dict[tuple[str, str], Losses] = {}
    style_as_content: dict[tuple[str, tuple[int, int]], Losses] = {}
    for path in contents:
        photo = resize_longest(load_image(path), size)
        c = image_to_bgr(photo)
        with torch.inference_mode():
            c_feats = vgg(c)
        c_grams = style_grams(c_feats)
        row = [photo]
        for n in names:
            unstylized[(path.name, n)] = Losses(float(gram_loss(c_grams, vgg_targets[n])), 0.0)
            key = (n, photo.size)  # photos of one shape share the resized style image
            if key not in style_as_content:
                as_content = image_to_bgr(style_imgs[n].resize(photo.size))
                style_as_content[key] = measure(vgg, as_content, c_feats, vgg_targets[n])
            as_style[(path.name, n)] = style_as_content[key]
        for kind, targets in kinds.items():
            results = stylizer.run([c] * len(names), [targets[n] for n in names])
            for n, out in zip(names, results, strict=True):
                with torch.inference_mode():
                    feats = vgg(out)
                grams = style_grams(feats)
                losses = Losses(style=float(gram_loss(grams, vgg_targets[n])),
                                content=float(content_loss(feats, c_feats)))
                outputs[kind].append(Output(path.name, n, grams, losses))
                if kind == "preset":
                    pairs.append({"content": path.name, "style": n, "model": vars(losses),
                                  "unstylized": vars(unstylized[(path.name, n)]),
                                  "style_image": vars(as_style[(path.name, n)])})
                    row.append(bgr_to_image(out))
        rows.append(row)

    def mean(kind: str, key: str, items: list[dict]) -> float:
        return statistics.fmean(p[kind][key] for p in items)

    summary = {k: {"style": mean(k, "style", pairs), "content": mean(k, "content", pairs)}
               for k in ("model", "unstylized", "style_image")}
    summary["ratios"] = {
        "model_style_over_unstylized": summary["model"]["style"] / summary["unstylized"]["style"],
        "model_content_over_style_image":
            summary["model"]["content"] / summary["style_image"]["content"],
    }
    for kind, items in outputs.items():
        key = {"preset": "styles", "upload": "uploads", "learned": "learned"}[kind]
        summary[key] = style_figures(items, vgg_targets, unstylized, as_style)
    gatys_rows = []
    for k in range(min(gatys_pairs, len(contents) * len(names))):
        path, n = contents[k % len(contents)], names[k % len(names)]
        photo = resize_longest(load_image(path), gatys_size)
        c = image_to_bgr(photo)
        style_small = style_imgs[n]
        with torch.no_grad():  # not inference_mode: Gatys back-propagates against these
            c_feats = vgg(c)
            tg = style_grams(vgg(image_to_bgr(style_small)))
        started = time.monotonic()
        g_out = gatys(vgg, c, tg, gatys_steps)
        gatys_rows.append({
            "content": path.name, "style": n, "size": gatys_size, "steps": gatys_steps,
            "seconds": round(time.monotonic() - started, 1),
            "gatys": vars(measure(vgg, g_out, c_feats, tg)),
            "model": vars(measure(vgg, run_model(net, c, gen_targets[n]), c_feats, tg)),
            "unstylized": vars(measure(vgg, c, c_feats, tg)),
            "style_image": vars(measure(vgg, image_to_bgr(style_small.resize(photo.size)),
                                        c_feats, tg)),
        })
    if gatys_rows:
        summary["gatys"] = {
            "size": gatys_size, "steps": gatys_steps, "pairs": len(gatys_rows),
            "gatys_style_over_unstylized": statistics.fmean(
                r["gatys"]["style"] / r["unstylized"]["style"] for r in gatys_rows),
            "gatys_content_over_style_image": statistics.fmean(
                r["gatys"]["content"] / r["style_image"]["content"] for r in gatys_rows),
            "model_style_over_gatys": statistics.fmean(
                r["model"]["style"] / r["gatys"]["style"] for r in gatys_rows),
            "model_content_over_gatys": statistics.fmean(
                r["model"]["content"] / r["gatys"]["content"] for r in gatys_rows),
        }

    report = {
        "weights": str(weights), "weights_metadata": loaded.metadata,
        "size": size, "style_size": style_size, "upload_size": upload_size,
        "contents": [p.name for p in contents],
        "styles": names, "summary": summary, "pairs": pairs, "gatys": gatys_rows,
        "seconds": round(time.monotonic() - t0, 1),
    }
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(report, indent=2, default=str))
    if gallery:
        Path(gallery).parent.mkdir(parents=True, exist_ok=True)
        shown = [j for j, n in enumerate(names) if not gallery_styles or n in gallery_styles]
        grid = [[row[0], *(row[j + 1] for j in shown)] for row in rows]
        make_gallery(grid, ["content", *(names[j] for j in shown)]).save(gallery)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True)
    p.add_argument("--content-dir", required=True, help="held-out content photos")
    p.add_argument("--style-dir", required=True, help="style images (file stem = preset name)")
    p.add_argument("--vgg", required=True, help="VGG16 Caffe weights")
    p.add_argument("-o", "--output", required=True, help="JSON report path")
    p.add_argument("--gallery", help="gallery image path (.png or .jpg)")
    p.add_argument("--gallery-styles", nargs="*",
                   help="styles shown in the gallery (default: all evaluated styles)")
    p.add_argument("--content-prefix", default="",
                   help="only content files whose name starts with this, e.g. val_ for the "
                        "photos train --exclude-prefix val_ held out")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--styles", nargs="*", help="style names (default: all in --style-dir)")
    p.add_argument("--limit", type=int, default=8, help="number of content photos")
    p.add_argument("--content-skip", type=int, default=0, metavar="N",
                   help="leave out the first N matching photos (e.g. those another protocol "
                        "was tuned on)")
    p.add_argument("--gatys-pairs", type=int, default=2)
    p.add_argument("--gatys-steps", type=int, default=300)
    p.add_argument("--gatys-size", type=int, default=256)
    p.add_argument("--threads", type=int)
    p.add_argument("--upload-size", type=int,
                   help="longest side an upload is encoded at (default: the size the "
                        "weights' encoder was trained at, as the server does)")
    p.add_argument("--uploads", action="store_true",
                   help="also stylize with each style encoded from its image, as an upload")
    p.add_argument("--no-predictor", dest="predictor", action="store_false",
                   help="encode uploads without the style predictor beside the weights "
                        "(NAME.predictor.pt), for an A/B")


def run(args: argparse.Namespace) -> int:
    try:
        report = _evaluate_from_args(args)
    except EvaluationInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in report["summary"].items()
               if k not in ("styles", "uploads", "learned")}
    for kind in ("styles", "uploads", "learned"):
        if kind in report["summary"]:
            summary[kind] = {k: v for k, v in report["summary"][kind].items()
                             if k != "per_style"}
    print(json.dumps(summary, indent=2))
    return 0


def _evaluate_from_args(args: argparse.Namespace) -> dict:
    return evaluate(args.weights, args.content_dir, args.style_dir, args.vgg, args.output,
                    args.gallery, size=args.size, style_size=args.style_size,
                    styles=args.styles, limit=args.limit, gatys_pairs=args.gatys_pairs,
                    gatys_steps=args.gatys_steps, gatys_size=args.gatys_size,
                    threads=args.threads, gallery_styles=args.gallery_styles,
                    content_prefix=args.content_prefix, uploads=args.uploads,
                    upload_size=args.upload_size, content_skip=args.content_skip,
                    predictor=args.predictor)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msgnet evaluate", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

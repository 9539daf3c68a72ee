"""Measure the two strength candidates of :mod:`msgnet.inference.controls` against each other.

For a few held-out photos and presets, at each strength: the VGG16 style loss of the output
against the style image (the recipe's Gram MSE over relu1_2..relu4_3, as in the quality report),
the content loss (relu2_2) and the PSNR to the photo, for

* ``gram``   - the target interpolated between the photo's own encoder Gram and the style's;
* ``pixels`` - the stylized pixels blended with the photo's.

    .venv/bin/python -m workbench.strength_figures --weights weights/msgnet-21styles.pt \\
        --content-dir ../shared/data/content/bsds500 --content-prefix val_ --limit 3 \\
        --style-dir ../shared/data/styles/21styles --styles candy udnie \\
        --vgg ../shared/weights/vgg16_caffe_conv1_1-conv4_3.pt -o docs/controls_strength.json

Every output comes from :meth:`msgnet.inference.stylize.Stylizer.run`, the served code path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from msgnet.imageio import image_to_bgr, load_image, resize_longest
from msgnet.inference.controls import STRENGTH_METHODS, Controls
from msgnet.inference.stylize import Stylizer
from msgnet.learning.vgg import Vgg16Features, content_loss, gram_loss, style_grams
from msgnet.training.metrics import psnr

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def measure(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    stylizer = Stylizer.from_file(args.weights, max_size=max(args.size, 512),
                                  default_size=args.size)
    vgg = Vgg16Features.from_file(args.vgg)
    photos = sorted(p for p in Path(args.content_dir).glob(f"{args.content_prefix}*.jpg"))
    photos = photos[:args.limit]
    with torch.inference_mode():
        style_vgg = {n: style_grams(vgg(image_to_bgr(resize_longest(
            load_image(Path(args.style_dir) / f"{n}.jpg"), args.style_size))))
            for n in args.styles}
    rows = []
    for path in photos:
        content = stylizer.prepare_content(load_image(path), args.size)
        with torch.inference_mode():
            c_feats = vgg(content)
            c_grams = style_grams(c_feats)
        for name in args.styles:
            target = stylizer.preset_target(name)
            unstylized = float(gram_loss(c_grams, style_vgg[name]))
            for method in STRENGTH_METHODS:
                controls = [Controls(strength=s, method=method) for s in STRENGTHS]
                outs = stylizer.run([content] * len(STRENGTHS), [target] * len(STRENGTHS),
                                    controls)
                for s, out in zip(STRENGTHS, outs, strict=True):
                    with torch.inference_mode():
                        feats = vgg(out)
                    rows.append({"photo": path.name, "style": name, "method": method,
                                 "strength": s,
                                 "style_loss": float(gram_loss(style_grams(feats),
                                                               style_vgg[name])),
                                 "style_ratio": float(gram_loss(style_grams(feats),
                                                                style_vgg[name])) / unstylized,
                                 "content_loss": float(content_loss(feats, c_feats)),
                                 "psnr_to_photo": psnr(out, content)})
    summary = {}
    for method in STRENGTH_METHODS:
        per_s = {}
        for s in STRENGTHS:
            sel = [r for r in rows if r["method"] == method and r["strength"] == s]
            per_s[str(s)] = {k: round(statistics.fmean(min(r[k], 99.0) if k == "psnr_to_photo"
                                                       else r[k] for r in sel), 4)
                             for k in ("style_loss", "style_ratio", "content_loss",
                                       "psnr_to_photo")}
        monotone = 0
        pairs = 0
        for photo in {r["photo"] for r in rows}:
            for name in args.styles:
                losses = [r["style_loss"] for r in rows if r["method"] == method
                          and r["photo"] == photo and r["style"] == name]
                pairs += 1
                monotone += all(b <= a for a, b in zip(losses, losses[1:], strict=False))
        summary[method] = {"by_strength": per_s, "monotone_pairs": f"{monotone}/{pairs}"}
    return {"weights": str(args.weights), "size": args.size, "style_size": args.style_size,
            "photos": [p.name for p in photos], "styles": args.styles,
            "strengths": list(STRENGTHS), "summary": summary, "rows": rows,
            "psnr_note": "psnr_to_photo means cap infinite (identical) values at 99 dB",
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--content-dir", required=True)
    p.add_argument("--content-prefix", default="val_")
    p.add_argument("--limit", type=int, default=3)
    p.add_argument("--style-dir", required=True)
    p.add_argument("--styles", nargs="+", default=["candy", "udnie"])
    p.add_argument("--vgg", required=True)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--style-size", type=int, default=512,
                   help="style image size for the VGG targets (the quality report's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    report = measure(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    for method, data in report["summary"].items():
        print(f"{method} (style loss monotone in {data['monotone_pairs']} photo/style pairs)")
        for s, m in data["by_strength"].items():
            print(f"  strength {s:>4}: style {m['style_loss']:>12.0f}  ratio "
                  f"{m['style_ratio']:.3f}  content {m['content_loss']:>10.0f}  "
                  f"PSNR {m['psnr_to_photo']:.2f} dB")
    print(f"{args.output} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

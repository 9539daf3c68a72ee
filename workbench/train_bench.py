"""Seconds per training step, for the variants that make a step cheaper, side by side.

Each round runs every variant for ``--steps`` steps, one variant after another, so the variants
share the machine's state (other load, clock); steps cycle through the style images as training
does (their sizes differ), and every variant gets the same styles in a round. The table gives
the median over rounds of each variant's mean step, and its ratio to the first variant measured
in the same round.

    .venv/bin/python -m workbench.train_bench --content-dir ../shared/data/content \\
        --style-dir ../shared/data/styles/21styles \\
        --vgg ../shared/weights/vgg16_caffe_conv1_1-conv4_3.pt \\
        --init-weights weights/msgnet-21styles.pt -o docs/train_step_bench.json

Without ``--vgg`` and data folders it runs on random tensors and a random VGG (a smoke run).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from msgnet.imageio import list_images
from msgnet.learning.vgg import CONTENT_LAYER, LAYERS, Vgg16Features, style_grams
from msgnet.model.checkpoint import load_weights
from msgnet.model.net import Net
from msgnet.training.data import ContentSampler, load_styles
from msgnet.training.step import train_step
from workbench.bench.inputs import cpu_name


@dataclass(frozen=True)
class Variant:
    name: str
    encoder_size: int
    content_upto: str
    cached: bool
    what: str


VARIANTS = (
    Variant("recipe", 512, LAYERS[-1], False,
            "as the recipe: encoder on the 512 px style, photo's VGG pass to relu4_3, photos "
            "decoded every step"),
    Variant("content-relu2_2", 512, CONTENT_LAYER, False, "photo's VGG pass stops at relu2_2"),
    Variant("+cache", 512, CONTENT_LAYER, True, "and photos decoded and resized once"),
    Variant("+encoder-384", 384, CONTENT_LAYER, True, "and the encoder sees the style at 384"),
    Variant("+encoder-256", 256, CONTENT_LAYER, True, "and the encoder sees the style at 256"),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--content-dir")
    p.add_argument("--style-dir")
    p.add_argument("--vgg")
    p.add_argument("--init-weights")
    p.add_argument("--exclude-prefix", action="append", default=["val_"])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--crop-size", type=int, default=128)
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=7, help="steps per variant per round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", nargs="*", default=[v.name for v in VARIANTS])
    p.add_argument("--ngf", type=int, default=128)
    p.add_argument("-o", "--output", help="JSON file to write")
    args = p.parse_args(argv)
    known = {v.name: v for v in VARIANTS}
    unknown = [n for n in args.variants if n not in known]
    if unknown:
        p.error(f"unknown variants: {', '.join(unknown)} (known: {', '.join(known)})")
    variants = [known[n] for n in args.variants]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    real = bool(args.content_dir and args.style_dir and args.vgg)
    if real:
        vgg = Vgg16Features.from_file(args.vgg)
        style_files = list_images(args.style_dir)
        by_size = {s: list(load_styles(style_files, s).values())
                   for s in {args.style_size, *(v.encoder_size for v in variants)}}
        files = list_images(args.content_dir, args.exclude_prefix)
    else:
        vgg = Vgg16Features((16, 32, 64, 64))
        by_size = {s: [torch.rand(1, 3, s, s * 3 // 4) * 255]
                   for s in {args.style_size, *(v.encoder_size for v in variants)}}
        files = []
    with torch.no_grad():  # the styles' aspect ratios differ, so steps cycle through them all
        targets = [style_grams(vgg(img)) for img in by_size[args.style_size]]
    n_styles = len(targets)
    base = load_weights(args.init_weights).net if args.init_weights else Net(ngf=args.ngf)
    samplers, nets, optimizers = {}, {}, {}
    for v in variants:
        nets[v.name] = copy.deepcopy(base).train()
        optimizers[v.name] = torch.optim.Adam(nets[v.name].parameters(), lr=1e-3)
        if real:
            s = ContentSampler(files, args.image_size, random.Random(0), args.crop_size)
            if not v.cached:  # forget each photo after use: decode and resize every step
                s._resized = _Forgetful()
            samplers[v.name] = s

    def batch(v: Variant) -> torch.Tensor:
        if real:
            return samplers[v.name].batch(args.batch_size)
        return torch.rand(args.batch_size, 3, args.crop_size, args.crop_size) * 255

    def step(v: Variant, k: int) -> float:
        t = time.perf_counter()
        train_step(nets[v.name], vgg, optimizers[v.name], batch(v),
                   by_size[v.encoder_size][k % n_styles], targets[k % n_styles], 1.0, 5.0,
                   content_upto=v.content_upto)
        return time.perf_counter() - t

    for v in variants:  # warm-up (first-call kernel set-up) and fill the caches a little
        step(v, 0)
    rounds: list[dict[str, float]] = []
    k = 0
    for _ in range(args.rounds):
        row = {}
        for v in variants:  # every variant gets the same styles in a round
            row[v.name] = statistics.mean(step(v, k + i) for i in range(args.steps))
        rounds.append(row)
        k += args.steps
    first = variants[0].name
    rows = []
    for v in variants:
        med = statistics.median(r[v.name] for r in rounds)
        ratio = statistics.median(r[v.name] / r[first] for r in rounds)
        rows.append({"variant": v.name, "what": v.what, "s_per_step": round(med, 3),
                     "ratio_to_first": round(ratio, 3),
                     "rounds": [round(r[v.name], 3) for r in rounds]})
    result = {"cpu": cpu_name() or platform.machine(), "threads": args.threads,
              "torch": torch.__version__,
              "data": "real photos" if real else "random tensors",
              "batch_size": args.batch_size, "crop_size": args.crop_size,
              "style_size": args.style_size, "rounds": args.rounds,
              "steps_per_round": args.steps, "styles": n_styles,
              "date": time.strftime("%Y-%m-%d"),
              "variants": rows}
    print(f"{result['cpu']}, {args.threads} threads, batch {args.batch_size}, "
          f"{args.crop_size} px crops, {result['data']}")
    print(f"{'variant':<18}{'s/step':>8}{'vs ' + first:>12}  what")
    for r in rows:
        print(f"{r['variant']:<18}{r['s_per_step']:>8.3f}{r['ratio_to_first']:>12.3f}  "
              f"{r['what']}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


class _Forgetful(dict):
    """A cache that keeps nothing (the decode-every-step baseline)."""

    def __setitem__(self, key, value) -> None:
        pass


if __name__ == "__main__":
    raise SystemExit(main())

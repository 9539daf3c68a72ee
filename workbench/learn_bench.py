"""Benchmark learning styles: seconds per style, and the quality figures before and after.

For each style picture (held-out ones: ``../shared/data/styles/unseen_dev``), learn its target
(:mod:`msgnet.learning.learn`) on photos from ``--photos``, then measure on held-out photos,
through the served code path (:func:`msgnet.training.evaluate.evaluate`), the style sent as an
upload against the learned style. Prints a table and writes JSON (docs/learn_bench.json is the
committed run).

    .venv/bin/python -m workbench.learn_bench --styles-first 8 -o /tmp/learn.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import fields
from pathlib import Path

import torch

from msgnet.imageio import list_images, load_image
from msgnet.learning.learn import LearnConfig, PhotoCrops, learn_style
from msgnet.learning.style_store import StyleStore
from msgnet.learning.vgg import Vgg16Features
from msgnet.model.checkpoint import load_weights, weights_fingerprint
from msgnet.training.evaluate import evaluate
from workbench.bench.inputs import cpu_name

ROOT = Path(__file__).resolve().parents[1]

SHARED = ROOT.parent / "shared"
FIGURES = ("identification", "style_ratio", "content_ratio", "separation")


def _yes(text: str) -> bool:
    """A boolean flag's value: yes/true/1 or no/false/0."""
    if text.lower() not in ("yes", "true", "1", "no", "false", "0"):
        raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")
    return text.lower() in ("yes", "true", "1")


def _store_name(name: str) -> str:
    return name.replace(".", "-")[:40]


def _write_times(args: argparse.Namespace, cfg_kw: dict, rows: list[dict], photos: int) -> int:
    if not rows:
        print("every style is in the store already: nothing to learn")
        return 0
    seconds = [r["seconds"] for r in rows]
    result = {"protocol": f"learning time only, {len(rows)} styles of {args.style_dir}",
              "cpu": cpu_name(), "threads": args.threads, "config": cfg_kw, "photos": photos,
              "median_seconds": statistics.median(seconds), "min_seconds": min(seconds),
              "max_seconds": max(seconds), "per_style": rows, "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d")}
    print(f"median learning time {result['median_seconds']:.1f} s ({min(seconds):.1f}-"
          f"{max(seconds):.1f}; {result['cpu']}, {args.threads} threads)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=str(ROOT / "weights" / "msgnet-21styles.pt"))
    p.add_argument("--vgg", default=str(SHARED / "weights" / "vgg16_caffe_conv1_1-conv4_3.pt"))
    p.add_argument("--photos", default=str(SHARED / "data" / "content"),
                   help="photos the styles are learned on")
    p.add_argument("--photos-exclude", default="val_", help="leave out these (held out)")
    p.add_argument("--photo-count", type=int, default=48,
                   help="photos the crops come from (the CLI and the server use up to --pool)")
    p.add_argument("--style-dir", default=str(SHARED / "data" / "styles" / "unseen_dev"))
    p.add_argument("--styles", nargs="*", help="style names (default: see --styles-first)")
    p.add_argument("--styles-first", type=int, default=8,
                   help="the first N styles of --style-dir (by name), skipping --styles-skip")
    p.add_argument("--styles-skip", type=int, default=0)
    p.add_argument("--content-dir", default=str(SHARED / "data" / "content" / "bsds500"))
    p.add_argument("--content-prefix", default="val_")
    p.add_argument("--content-skip", type=int, default=8,
                   help="held-out photos start after the bar protocol's 8")
    p.add_argument("--limit", type=int, default=4)
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gallery", help="write the evaluation gallery here")
    p.add_argument("--store", help="also save the learned styles to this style store")
    p.add_argument("--resume", action="store_true",
                   help="with --time-only and --store: skip the styles the store already has "
                        "(learning a whole folder, e.g. data/styles/extra, across sessions)")
    p.add_argument("--time-only", action="store_true",
                   help="learn and time the styles, skip the quality figures (an idle machine "
                        "gives the product's seconds; the figures can come from a busy one)")
    p.add_argument("-o", "--output", required=True, help="JSON results")
    for f in fields(LearnConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = {"str": str, "int": int, "float": float, "bool": _yes}.get(
            str(f.type).split(" ")[0], float)
        if f.name == "content_budget":
            p.add_argument(flag, type=float, default=f.default,
                           help="adaptive content weight's target (0: fixed weights)")
        else:
            p.add_argument(flag, type=kind, default=f.default)
    args = p.parse_args(argv)
    if args.resume and not (args.time_only and args.store):
        p.error("--resume needs --time-only and --store (the figures need every style)")
    torch.set_num_threads(args.threads)
    cfg_kw = {f.name: getattr(args, f.name) for f in fields(LearnConfig)}
    if not cfg_kw["content_budget"]:
        cfg_kw["content_budget"] = None
    cfg = LearnConfig(**cfg_kw)

    names = args.styles or [q.stem for q in list_images(args.style_dir)][
        args.styles_skip:args.styles_skip + args.styles_first]
    style_files = {q.stem: q for q in list_images(args.style_dir)}
    photo_files = list_images(args.photos, [args.photos_exclude])
    random.Random(0).shuffle(photo_files)
    loaded = load_weights(args.weights)
    vgg = Vgg16Features.from_file(args.vgg)
    crops = PhotoCrops(photo_files[:args.photo_count], cfg)
    learned, rows = {}, []
    store = StyleStore(args.store, max_per_owner=1000) if args.store else None
    for name in names:
        if args.resume and store is not None and store.exists(_store_name(name)):
            continue
        style_img = load_image(style_files[name])
        result = learn_style(loaded.net, vgg, style_img, crops, cfg)
        learned[name] = result.target
        if store is not None:
            store.save(_store_name(name), result.target,
                       weights_fingerprint(loaded.net.state_dict()), thumbnail=style_img,
                       info={"seconds": round(result.seconds, 1), "config": cfg_kw},
                       overwrite=True)
        rows.append({"style": name, "seconds": round(result.seconds, 2),
                     "fit_style_ratio": round(result.style_ratio, 3),
                     "fit_content_ratio": round(result.content_ratio, 3),
                     "content_weight": round(result.content_weight, 3)})
        print(f"{name:32s} {result.seconds:6.1f} s  fit style {result.style_ratio:.3f} "
              f"content {result.content_ratio:.3f} cw {result.content_weight:.2f}", flush=True)
    if args.time_only:
        return _write_times(args, cfg_kw, rows, len(photo_files[:args.photo_count]))
    started = time.monotonic()
    report = evaluate(args.weights, args.content_dir, args.style_dir, args.vgg,
                      str(Path(args.output).with_suffix(".eval.json")), args.gallery,
                      size=args.size, styles=names, limit=args.limit, gatys_pairs=0,
                      content_prefix=args.content_prefix, content_skip=args.content_skip,
                      uploads=True, learned=learned)
    summary = report["summary"]
    result = {
        "protocol": f"{len(names)} styles of {args.style_dir} x {args.limit} photos "
                    f"({args.content_prefix}* after the first {args.content_skip}) at "
                    f"{args.size} px, through Stylizer; chance 1/{len(names)}",
        "cpu": cpu_name(), "threads": args.threads, "config": cfg_kw,
        "photos": len(photo_files[:args.photo_count]),
        "median_seconds": statistics.median(r["seconds"] for r in rows),
        "uploads": {k: round(summary["uploads"][k], 4) for k in FIGURES},
        "learned": {k: round(summary["learned"][k], 4) for k in FIGURES},
        "per_style": [{**r, "upload_nearest": summary["uploads"]["per_style"][r["style"]][
                           "most_often_nearest"],
                       **{f"learned_{k}": round(v, 3) for k, v in
                          summary["learned"]["per_style"][r["style"]].items()
                          if isinstance(v, float)}} for r in rows],
        "eval_seconds": round(time.monotonic() - started, 1),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
    }
    print(f"\n{'':10s} " + " ".join(f"{k:>15s}" for k in FIGURES))
    for kind in ("uploads", "learned"):
        print(f"{kind:10s} " + " ".join(f"{result[kind][k]:15.3f}" for k in FIGURES))
    print(f"median learning time {result['median_seconds']:.1f} s ({result['cpu']}, "
          f"{args.threads} threads)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

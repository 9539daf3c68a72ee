"""How much of a photo gets past the Inspiration layer, per weights file (a table and JSON).

For held-out photos and a few presets, :func:`msgnet.training.inspiration.transmitted_share` of the
layer's matrix (``(W G)^T``, plus the diagonal skip where the weights have one) on the photo's
encoder features, and the matrix's singular values relative to its largest. The diagnostic
behind ``train --inspiration-skip`` (docs/training.md):

    .venv/bin/python -m workbench.inspiration_transmission weights/msgnet-21styles.pt \\
        runs/skip/msgnet-cpu.pt --content-dir ../shared/data/content/bsds500 \\
        -o docs/inspiration_transmission.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from msgnet.imageio import image_to_bgr, load_image, resize_longest
from msgnet.model.checkpoint import load_weights
from msgnet.model.net import SKIP_SCALE, inspiration_matrix
from msgnet.training.inspiration import transmitted_share

STYLES = ("candy", "mosaic", "starry_night", "udnie")
GAIN_AT = (1, 5, 10, 20, 50)  # singular values reported, 1-based


def measure(weights: str, photos: list[Path], styles: tuple[str, ...], size: int) -> dict:
    loaded = load_weights(weights)
    net = loaded.net.float().eval()
    w = net.ins.weight.detach()[0]
    skip = None if net.ins.skip is None else net.ins.skip.detach()
    with torch.inference_mode():
        feats = [net.model1(image_to_bgr(resize_longest(load_image(p), size)))[0]
                 for p in photos]
    shares, gains = [], {}
    for name in styles:
        m = inspiration_matrix(w, loaded.presets[name].float().reshape(w.shape), skip,
                               net.ins.skip_relative)
        shares += [transmitted_share(m, f) for f in feats]
        s = torch.linalg.svdvals(m.double())
        gains[name] = [round(float(s[i - 1] / s[0]), 4) for i in GAIN_AT if i <= len(s)]
    return {"weights": weights, "steps": loaded.metadata.get("steps"),
            "inspiration_skip": net.inspiration_skip,
            "inspiration_skip_mode": net.inspiration_skip_mode,
            # fixed: the gain itself; relative: as a fraction of ‖W G‖_F
            "skip_gain_mean_abs": (None if skip is None else round(float(
                (1.0 if net.ins.skip_relative else SKIP_SCALE) * skip.abs().mean()), 4)),
            "transmitted_share_median": round(statistics.median(shares), 4),
            "transmitted_share_range": [round(min(shares), 4), round(max(shares), 4)],
            "relative_singular_values": {"at": list(GAIN_AT), **gains}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="+")
    p.add_argument("--content-dir", required=True)
    p.add_argument("--content-prefix", default="val_")
    p.add_argument("--limit", type=int, default=4)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--styles", nargs="+", default=list(STYLES))
    p.add_argument("-o", "--output", help="JSON report")
    args = p.parse_args(argv)
    photos = sorted(q for q in Path(args.content_dir).glob(f"{args.content_prefix}*")
                    if q.suffix.lower() in (".jpg", ".jpeg", ".png"))[:args.limit]
    if not photos:
        p.error(f"no photos named {args.content_prefix}* in {args.content_dir}")
    rows = [measure(w, photos, tuple(args.styles), args.size) for w in args.weights]
    print(f"{'weights':<40} {'skip':>5} {'passed (median)':>16} {'range':>15}")
    for r in rows:
        lo, hi = r["transmitted_share_range"]
        print(f"{r['weights']:<40} {r['inspiration_skip']!s:>5} "
              f"{r['transmitted_share_median']:>16.3f} {lo:>7.3f}-{hi:<7.3f}")
    if args.output:
        Path(args.output).write_text(json.dumps({"photos": [q.name for q in photos],
                                                 "size": args.size, "rows": rows}, indent=2)
                                     + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

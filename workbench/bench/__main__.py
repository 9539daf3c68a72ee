"""``python -m workbench.bench``: the options, then a part's worker process or a whole run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from msgnet.inference.variants import VARIANTS
from workbench.bench import __doc__ as _DOC
from workbench.bench.inputs import DEFAULT_WEIGHTS, ROOT
from workbench.bench.latency import latency_worker
from workbench.bench.rss import rss_child
from workbench.bench.run import run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workbench.bench",
                                description=_DOC.split("\n\n")[0])
    p.add_argument("--sizes", default="256,512,1024,1024x768",
                   help="latency sizes: N (square) or WxH")
    p.add_argument("--variants", default="eager,eager-alloc,fast,fast-direct,jit",
                   help="inference variants (eager,eager-alloc,fast,fast-direct,jit,compile); "
                        "eager is the baseline, each runs in a process of its own")
    p.add_argument("--runs", type=int, default=3, help="timed runs per point (median)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="torch threads in process (default: all cores)")
    p.add_argument("--weights", type=Path, default=None,
                   help=f"weights file (default {DEFAULT_WEIGHTS.relative_to(ROOT)} when present, "
                        "else seeded random ngf=128)")
    p.add_argument("--rss", default="eager:512,eager:1024,fast:512,fast:1024,fast:2048,fast:4096",
                   help="variant:size pairs for peak RSS (fresh process each)")
    p.add_argument("--ts-workers", default="1,2", help="TorchServe worker counts to try "
                   "(threads per worker = cores / workers)")
    p.add_argument("--clients", default="1,4,8")
    p.add_argument("--per-client", type=int, default=2, help="requests per client")
    p.add_argument("--ts-runs", type=int, default=5, help="sequential e2e requests (median)")
    for part in ("latency", "rss", "quality", "torchserve", "matmul"):
        p.add_argument(f"--skip-{part}", action="store_true")
    p.add_argument("--late-variants", default="compile",
                   help="variants timed last, only at --late-sizes and only while the run is "
                        "within --budget-s (torch.compile spends minutes compiling)")
    p.add_argument("--late-sizes", default="512")
    p.add_argument("--budget-s", type=float, default=540)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bench.json")
    p.add_argument("--rss-child-variant", help=argparse.SUPPRESS)
    p.add_argument("--latency-worker", help=argparse.SUPPRESS)
    p.add_argument("--rss-child-size", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child_variant:
        return rss_child(args)
    if args.latency_worker:
        return latency_worker(args)
    unknown = [v for v in (args.variants + "," + args.late_variants).split(",")
               if v and v not in VARIANTS]
    if unknown:
        print(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}",
              file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())

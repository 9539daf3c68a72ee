"""One whole benchmark run: the parts in order, the JSON saved after each."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from msgnet.inference.tiling import TileConfig
from msgnet.inference.variants import DEFAULT_VARIANT
from msgnet.model.checkpoint import load_weights
from workbench.bench.flops import matmul_gflops
from workbench.bench.inputs import DEFAULT_WEIGHTS, cpu_name, parse_size, prepare_weights
from workbench.bench.latency import add_ratios, bench_latency
from workbench.bench.quality import bench_quality
from workbench.bench.report import table
from workbench.bench.rss import bench_rss
from workbench.bench.torchserve import bench_torchserve


def run(args: argparse.Namespace) -> int:
    """Every part not skipped, in order; the JSON is rewritten after each part."""
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}

    def save() -> None:  # after every part, so a run cut short still leaves its numbers
        report["total_s"] = time.perf_counter() - started
        args.out.write_text(json.dumps(report, indent=2, default=str))

    with tempfile.TemporaryDirectory(prefix="msgnet-bench-") as tmp:
        workdir = Path(tmp)
        weights, note = prepare_weights(args.weights or DEFAULT_WEIGHTS, workdir)
        loaded = load_weights(weights)
        report.update({
            "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)),
                        "python": platform.python_version(), "torch": torch.__version__,
                        "threads": args.threads},
            "weights": note, "ngf": loaded.net.ngf, "default_variant": DEFAULT_VARIANT,
            "tiling": TileConfig().__dict__,
        })
        print(f"weights: {note}\nthreads: {args.threads}", flush=True)
        if not args.skip_matmul:
            report["matmul_2048_gflops"] = matmul_gflops()
            print(f"  2048² fp32 matmul: {report['matmul_2048_gflops']:.0f} GFLOP/s", flush=True)
        variants = [v for v in args.variants.split(",") if v]
        if "eager" not in variants:
            variants.insert(0, "eager")
        if not args.skip_latency:
            sizes = [parse_size(s) for s in args.sizes.split(",") if s]
            def partial(results: dict[str, Any]) -> None:
                report["latency"] = results
                save()

            report["latency"] = bench_latency(weights, loaded.net, variants, sizes, args.runs,
                                              args.warmup, args.threads, partial)
            save()
        if not args.skip_quality:
            report["quality"] = bench_quality(loaded, variants)
            save()
        if not args.skip_rss:
            plan = []
            for item in args.rss.split(","):
                name, size = item.split(":")
                plan.append((name, parse_size(size)))
            report["rss"] = bench_rss(weights, plan, args.threads)
            save()
        if not args.skip_torchserve:
            report["torchserve"] = bench_torchserve(
                weights, workdir, [int(w) for w in args.ts_workers.split(",")],
                len(os.sched_getaffinity(0)), args.ts_runs,
                [int(c) for c in args.clients.split(",")], args.per_client)
            save()
        late = [v for v in args.late_variants.split(",") if v]
        if late and not args.skip_latency:
            elapsed = time.perf_counter() - started
            if elapsed > args.budget_s:
                report["late_variants_skipped"] = f"{late}: run already took {elapsed:.0f} s"
                print(f"  skipped {late}: over the time budget ({elapsed:.0f} s)", flush=True)
            else:
                sizes = [parse_size(s) for s in args.late_sizes.split(",") if s]
                extra = bench_latency(weights, loaded.net, late, sizes, args.runs, 1,
                                      args.threads)
                lat = report.setdefault("latency", {"variants": {}})
                add_ratios(extra, lat["variants"].get("eager"))
                lat["variants"].update(extra["variants"])
        save()
    print("\n" + table(report))
    print(f"JSON: {args.out}  ({report['total_s']:.0f} s)")
    return 0



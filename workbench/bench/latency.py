"""In-process latency, each variant in a worker process of its own."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from msgnet.inference.stylize import pad_to_multiple
from msgnet.inference.variants import build_variant
from msgnet.model.checkpoint import load_weights
from msgnet.model.net import Net
from workbench.bench.flops import model_flops
from workbench.bench.inputs import PYTHON, ROOT, photo_tensor, size_label, target_for


class LatencyWorker:
    """One inference variant in a process of its own, timed on request over a pipe.

    Why a process per variant: a variant may change process-wide state. ``fast`` tunes glibc's
    allocator, and that alone makes the eager model about 1.9x faster at 512², so an ``eager``
    timed in the same process is no longer the baseline. Each worker builds its variant once
    and answers ``{"size": [h, w], "calls": n}`` with the ``n`` call times.
    """

    def __init__(self, name: str, weights: Path, threads: int):
        self.name = name
        cmd = [PYTHON, "-m", "workbench.bench", "--latency-worker", name,
               "--weights", str(weights), "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=ROOT)
        self.info: dict[str, Any] = self._reply()

    def _reply(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"latency worker {self.name} exited ({self.proc.wait()})")
        return json.loads(line)

    def run(self, hw: tuple[int, int], calls: int) -> list[float]:
        self.proc.stdin.write(json.dumps({"size": list(hw), "calls": calls}) + "\n")
        self.proc.stdin.flush()
        return self._reply()["times"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def latency_worker(args: argparse.Namespace) -> int:
    """Worker mode (see :class:`LatencyWorker`): replies are JSON lines on the real stdout."""
    replies, sys.stdout = sys.stdout, sys.stderr  # library output must not break the protocol
    from msgnet.inference.allocator import allocator_tuned

    def reply(obj: dict[str, Any]) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    torch.set_num_threads(args.threads)
    loaded = load_weights(args.weights, map_location="cpu")
    t = time.perf_counter()
    impl = build_variant(args.latency_worker, loaded.net)
    build_s = time.perf_counter() - t
    target = target_for(loaded, loaded.net)
    reply({"build_s": build_s, "allocator_tuned": allocator_tuned()})
    inputs: dict[tuple[int, int], torch.Tensor] = {}
    for line in sys.stdin:
        request = json.loads(line)
        hw = (int(request["size"][0]), int(request["size"][1]))
        if hw not in inputs:
            inputs[hw] = pad_to_multiple(photo_tensor(hw))
        times = []
        for _ in range(int(request["calls"])):
            t = time.perf_counter()
            impl(inputs[hw], target)
            times.append(time.perf_counter() - t)
        reply({"times": times})
    return 0


def bench_latency(weights: Path, net: Net, variants: list[str], sizes: list[tuple[int, int]],
                  runs: int, warmup: int, threads: int, progress=None) -> dict[str, Any]:
    """Latency per variant and size, each variant in its own process (:class:`LatencyWorker`);
    ``progress(results)`` after each size (partial saves).

    The variants take turns within every round (eager, fast, jit, eager, ...), so on a shared
    machine a burst of foreign load hits them alike and the ratios stay fair; the per-round
    ratios are kept too.
    """
    results: dict[str, Any] = {"runs": runs, "warmup": warmup, "interleaved": True,
                               "process_per_variant": True, "variants": {}}
    flops = {size_label(s): model_flops(net, s) for s in sizes}
    results["gflop_per_image"] = {k: v / 1e9 for k, v in flops.items()}
    workers: dict[str, LatencyWorker] = {}
    try:
        for name in variants:
            workers[name] = LatencyWorker(name, weights, threads)
            info = workers[name].info
            results["variants"][name] = {"build_s": info["build_s"],
                                         "allocator_tuned": info["allocator_tuned"],
                                         "sizes": {}}
        for hw in sizes:
            label = size_label(hw)
            firsts, times = {}, {name: [] for name in variants}
            for name, worker in workers.items():
                firsts[name] = worker.run(hw, 1)[0]  # compile variants compile here
                if warmup > 1:
                    worker.run(hw, warmup - 1)
            for _ in range(runs):
                for name, worker in workers.items():
                    times[name] += worker.run(hw, 1)
            for name in variants:
                med = statistics.median(times[name])
                results["variants"][name]["sizes"][label] = {
                    "median_s": med, "times_s": times[name], "first_call_s": firsts[name],
                    "gflops_per_s": flops[label] / med / 1e9}
                print(f"  latency {name:11s} {label:10s} {med:7.3f} s "
                      f"(first {firsts[name]:.2f} s)", flush=True)
            add_ratios(results)
            if progress is not None:
                progress(results)
    finally:
        for worker in workers.values():
            worker.close()
    return results


def add_ratios(results: dict[str, Any], baseline: dict[str, Any] | None = None) -> None:
    """``speedup_vs_eager`` (ratio of medians) and ``round_speedup_vs_eager`` (median of the
    per-round ratios, eager's time in that round over the variant's; None against a
    ``baseline`` from another run, whose rounds are not these)."""
    eager = baseline or results["variants"].get("eager")
    if not eager:
        return
    for entry in results["variants"].values():
        for label, m in entry["sizes"].items():
            base = eager["sizes"].get(label)
            if not base:
                m["speedup_vs_eager"] = m["round_speedup_vs_eager"] = None
                continue
            m["speedup_vs_eager"] = base["median_s"] / m["median_s"]
            same_rounds = baseline is None and len(base["times_s"]) == len(m["times_s"])
            m["round_speedup_vs_eager"] = statistics.median(
                b / t for b, t in zip(base["times_s"], m["times_s"], strict=True)
            ) if same_rounds else None



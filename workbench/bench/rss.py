"""Peak RSS per (variant, size), each in a fresh grandchild process."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from msgnet.inference.stylize import Stylizer
from msgnet.model.checkpoint import load_weights
from workbench.bench.inputs import PYTHON, ROOT, parse_size, photo_tensor, size_label, target_for


def rss_child(args: argparse.Namespace) -> int:
    """Child mode: one stylization through the served path, then report timings as JSON."""
    torch.set_num_threads(args.threads)
    loaded = load_weights(args.weights, map_location="cpu")
    h, w = parse_size(args.rss_child_size)
    stylizer = Stylizer(loaded, max_size=max(h, w), default_size=min(512, max(h, w)),
                        variant=args.rss_child_variant)
    target = target_for(loaded, stylizer.net)
    x = photo_tensor((h, w))
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    out = stylizer.run([x], [target])[0]
    elapsed = time.perf_counter() - t
    assert out.shape[-2:] == (h, w)
    tiled = bool(stylizer.tiled and stylizer.tiled.tiled_calls)
    hwm = next((int(line.split()[1]) for line in Path("/proc/self/status").read_text()
                .splitlines() if line.startswith("VmHWM:")), 0)
    print(json.dumps({"seconds": elapsed, "tiled": tiled, "rss_after_load_kb": rss_loaded,
                      "vmhwm_gb": hwm * 1024 / 1e9}))
    return 0


# Linux carries the parent's peak RSS into a child's ru_maxrss across fork+exec, and this
# process is large; so a small launcher (fresh interpreter, ~10 MB) starts each measured child
# and reports that child's own ru_maxrss from wait4 (the child's VmHWM is kept as a check).
def _measured_child(cmd: list[str]) -> tuple[int, str, str, int]:
    """Run ``cmd`` as a grandchild; (exit code, stdout, stderr, ru_maxrss in kB)."""
    code = ("import json, os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, "
            "stderr=subprocess.PIPE, text=True)\n"
            "out, err = p.stdout.read(), p.stderr.read()\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "print(json.dumps({'rc': os.waitstatus_to_exitcode(status), 'out': out, "
            "'err': err[-3000:], 'maxrss_kb': usage.ru_maxrss}))\n")
    done = subprocess.run([PYTHON, "-c", code, *cmd], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    info = json.loads(done.stdout)
    return info["rc"], info["out"], info["err"], info["maxrss_kb"]


def bench_rss(weights: Path, plan: list[tuple[str, tuple[int, int]]], threads: int
              ) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, hw in plan:
        label = size_label(hw)
        cmd = [PYTHON, "-m", "workbench.bench", "--rss-child-variant", name,
               "--rss-child-size", f"{hw[1]}x{hw[0]}", "--weights", str(weights),
               "--threads", str(threads)]
        rc, stdout, stderr, maxrss_kb = _measured_child(cmd)
        if rc != 0:
            print(f"  rss {name} {label}: FAILED\n{stderr[-2000:]}", flush=True)
            results.setdefault(name, {})[label] = {"error": stderr[-2000:]}
            continue
        info = json.loads(stdout.strip().splitlines()[-1])
        info["peak_rss_gb"] = maxrss_kb * 1024 / 1e9
        info["rss_after_load_gb"] = info.pop("rss_after_load_kb") * 1024 / 1e9
        results.setdefault(name, {})[label] = info
        print(f"  rss {name:8s} {label:10s} peak {info['peak_rss_gb']:.2f} GB "
              f"({info['seconds']:.1f} s{', tiled' if info['tiled'] else ''})", flush=True)
    return results



"""workbench.bench's latency part, on a tiny net: each variant runs in a process of its own,
so ``fast``'s process-wide allocator setting cannot speed up the eager baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-m", "workbench.bench"]
LATENCY_ONLY = ["--skip-matmul", "--skip-rss", "--skip-quality", "--skip-torchserve",
                "--late-variants", "", "--threads", "1"]


def test_each_variant_is_timed_in_its_own_process_with_per_round_ratios(
        tiny_weights_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([*BENCH, *LATENCY_ONLY, "--weights", str(tiny_weights_path),
                           "--sizes", "64,96x64", "--variants", "eager,fast", "--runs", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    variants = json.loads(out.read_text())["latency"]["variants"]
    assert variants["eager"]["allocator_tuned"] is False  # the baseline's own process
    assert variants["fast"]["allocator_tuned"] is True
    for label in ("64²", "96x64"):
        fast = variants["fast"]["sizes"][label]
        assert len(fast["times_s"]) == 2 and all(t > 0 for t in fast["times_s"])
        assert fast["speedup_vs_eager"] > 0 and fast["round_speedup_vs_eager"] > 0
    assert "Median of the per-round ratios" in done.stdout
    assert "| 96x64 |" in done.stdout


def test_an_unknown_variant_is_refused_before_any_work(tmp_path: Path) -> None:
    done = subprocess.run([*BENCH, *LATENCY_ONLY, "--variants", "eager,turbo",
                           "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert "unknown variant(s) turbo" in done.stderr and "fast" in done.stderr
    assert not (tmp_path / "x.json").exists()

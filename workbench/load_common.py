"""What the load tools (workbench/load_bot.py, workbench/load_rest.py) share: a private TorchServe
with the shipped weights, RSS sampling, percentiles, the machine and the JSON/table output.

The stand-ins they drive (the fake Bot API, the bot process, test images) are the ``fakes``
package, which the tests use too.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from pathlib import Path

import psutil

import tsclient
from tsclient.private import PrivateTorchServe

ROOT = tsclient.ROOT
WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"


def start_torchserve(base: Path, weights: Path = WEIGHTS,
                     timeout: float = 300) -> PrivateTorchServe:
    """The normal .mar (scripts/build_mar.py, handler/model-config.yaml) on free ports."""
    server = PrivateTorchServe(base)
    server.build_mar(weights, "--version", "1.0")
    try:
        server.start(timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server


def worker_pids(server: PrivateTorchServe) -> list[int]:
    """This server's model_service_worker processes (its own process tree only)."""
    if server.proc is None:
        return []
    try:
        kids = psutil.Process(server.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in kids:
        try:
            if "model_service_worker" in " ".join(p.cmdline()):
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


def frontend_pid(server: PrivateTorchServe) -> int | None:
    """The Java frontend of this server (a child of the torchserve launcher, or itself)."""
    if server.proc is None:
        return None
    try:
        procs = [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(True)]
    except psutil.NoSuchProcess:
        return None
    for p in procs:
        try:
            if "java" in p.name():
                return p.pid
        except psutil.Error:
            continue
    return None


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


class Sampler(threading.Thread):
    """Samples named values every ``interval`` s in the background; keeps first, last and peak,
    because 'RSS bounded' means the peak and the end agree with the start, not one reading."""

    def __init__(self, probes: dict[str, callable], interval: float = 0.5):
        super().__init__(daemon=True)
        self.probes, self.interval = probes, interval
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        for name, probe in self.probes.items():
            try:
                value = float(probe())
            except Exception:  # a probe that fails once (a restarting worker) is skipped
                continue
            self.first.setdefault(name, value)
            self.last[name] = value
            self.peak[name] = max(self.peak.get(name, value), value)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> dict[str, dict[str, float]]:
        self._halt.set()
        self.join(5)
        self.sample()
        return {n: {"first": round(self.first.get(n, 0), 1), "last": round(self.last.get(n, 0), 1),
                    "peak": round(self.peak.get(n, 0), 1)} for n in self.probes}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a reported p95 is a measured latency)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return round(ordered[min(rank, len(ordered)) - 1], 3)


def machine() -> dict:
    """The CPU and load the figures were taken on (a shared machine: say so)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    niced = []
    for p in psutil.process_iter(["pid", "nice", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if "msgnet train" in cmd or "-m msgnet" in cmd and "train" in cmd:
                niced.append({"pid": p.info["pid"], "nice": p.info["nice"]})
        except psutil.Error:
            continue
    return {"cpu": cpu, "cores": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "background_training": niced, "python": platform.python_version()}


def write_json(path: Path | None, report: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def table(rows: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def now() -> float:
    return time.monotonic()

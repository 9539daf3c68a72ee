"""Peak RSS of the TorchServe handler for one server-side batch, in a fresh process.

A worker gets concurrent requests of one shape as one batch. This loads the handler as
TorchServe's worker does (the archive's model config, warm-up included), hands it one batch
of ``--count`` photos at ``--size`` px and reports the process's peak RSS, so the batch split
(``batch_pixels``, handler/batching.py) can be compared with the unsplit batch:

    python -m workbench.ts_batch_rss --batch-pixels 0          # before: one 4-megapixel pass
    python -m workbench.ts_batch_rss                           # the archive's batch_pixels
    python -m workbench.ts_batch_rss --torchserve [--batch-pixels 0]   # through a real server

With ``--torchserve`` a private TorchServe (free ports, a temp folder) serves the weights, the
``--count`` requests are sent at once, and the worker's own peak (``VmHWM``) is reported, with
the batch size TorchServe formed (``X-Msgnet-Batch-Size``).

The measured process is a grandchild started by a small launcher, whose ``wait4`` reports the
child's own ``ru_maxrss`` (Linux carries a parent's peak into a forked child's).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"

LAUNCHER = ("import json, os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n"
            "out = p.stdout.read()\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "print(json.dumps({'rc': os.waitstatus_to_exitcode(status), 'out': out, "
            "'maxrss_kb': usage.ru_maxrss}))\n")


def photos(count: int, size: int) -> list[bytes]:
    """``count`` different noisy gradients, ``size`` px square, as PNG."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    out = []
    for i in range(count):
        base = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1),
                         np.full((size, size), 40.0 * i, np.float32)], -1)
        noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def child(args: argparse.Namespace) -> int:
    """Load the handler like a worker, run one batch, print the figures as JSON."""
    from ts.context import Context, RequestProcessor

    from handler.msgnet_handler import MsgnetHandler

    class NullMetrics:
        def add_metric(self, *a, **k) -> None:
            pass

    config = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
    config["handler"]["threads"] = args.threads
    if args.batch_pixels is not None:
        config["handler"]["batch_pixels"] = args.batch_pixels
    weights = Path(args.weights).resolve()
    manifest = {"model": {"modelName": "msgnet", "serializedFile": weights.name,
                          "modelVersion": "bench", "handler": "msgnet_handler.py"}}
    context = Context("msgnet", str(weights.parent), manifest, args.count, None, "0.12.0",
                      metrics=NullMetrics(), model_yaml_config=config)
    handler = MsgnetHandler()
    handler.initialize(context)
    batch = [{"content": bytearray(p), "style_id": bytearray(b"candy"),
              "size": str(args.size).encode()} for p in photos(args.count, args.size)]
    context.request_processor = [RequestProcessor({}) for _ in batch]
    loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    out = handler.handle(batch, context)
    seconds = time.perf_counter() - t
    codes = [context.get_response_status(i)[0] for i in range(len(batch))]
    print(json.dumps({"codes": codes, "seconds": round(seconds, 2),
                      "answer_bytes": [len(o) for o in out],
                      "batch_pixels": handler.settings.batch_pixels,
                      "peak_after_load_gb": round(loaded_kb * 1024 / 1e9, 3)}))
    return 0


def measure(args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "workbench.ts_batch_rss", "--child", "--count", str(args.count),
           "--size", str(args.size), "--threads", str(args.threads), "--weights", args.weights]
    if args.batch_pixels is not None:
        cmd += ["--batch-pixels", str(args.batch_pixels)]
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], capture_output=True,
                          text=True, check=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    info = json.loads(done.stdout)
    if info["rc"] != 0:
        raise SystemExit(f"the measured process failed (exit {info['rc']})")
    result = json.loads(info["out"].strip().splitlines()[-1])
    result["peak_rss_gb"] = round(info["maxrss_kb"] * 1024 / 1e9, 3)
    return result


def through_torchserve(args: argparse.Namespace) -> dict:
    """Send ``count`` requests at once to a private TorchServe; the worker's peak RSS."""
    import concurrent.futures
    import re
    import tempfile

    import psutil

    import tsclient
    from tsclient.private import PrivateTorchServe

    env = {"MSGNET_THREADS": str(args.threads)}
    if args.batch_pixels is not None:
        env["MSGNET_BATCH_PIXELS"] = str(args.batch_pixels)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
        config["maxBatchDelay"] = 2000  # the concurrent requests meet in one batch
        # TorchServe drops an answer later than clientTimeoutInMills after its request came
        # (and never answers it): a slow machine must not turn the measurement into a hang
        config["clientTimeoutInMills"] = 900_000
        config["responseTimeout"] = 900
        (base / "model-config.yaml").write_text(yaml.safe_dump(config))
        server = PrivateTorchServe(base / "ts", env=env)
        server.build_mar(Path(args.weights), "--model-config", str(base / "model-config.yaml"))
        bodies = [tsclient.multipart([("content", p, "photo.png"),
                                       ("style_id", b"candy", None),
                                       ("size", str(args.size).encode(), None)])
                  for p in photos(args.count, args.size)]
        with server.running(timeout=300):
            worker = next(p for p in psutil.Process(server.proc.pid).children(recursive=True)
                          if "model_service_worker" in " ".join(p.cmdline()))
            idle = worker.memory_info().rss
            key = server.keys().inference

            def send(body: tuple[bytes, str]) -> str:
                import urllib.request

                request = urllib.request.Request(
                    server.predictions_url(), data=body[0], method="POST",
                    headers={"Content-Type": body[1], "Authorization": f"Bearer {key}"})
                with urllib.request.urlopen(request, timeout=900) as answer:
                    answer.read()
                    return answer.headers.get("X-Msgnet-Batch-Size", "?")

            t = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.count) as pool:
                batches = list(pool.map(send, bodies))
            seconds = time.perf_counter() - t
            status = Path(f"/proc/{worker.pid}/status").read_text()
            peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024
    return {"batch_sizes": batches, "seconds": round(seconds, 2),
            "batch_pixels": env.get("MSGNET_BATCH_PIXELS", "archive default"),
            "worker_idle_rss_gb": round(idle / 1e9, 3), "worker_peak_rss_gb": round(peak / 1e9, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-pixels", type=int, default=None,
                   help="override the archive's batch_pixels (0: no split)")
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--torchserve", action="store_true",
                   help="send the requests at once to a private TorchServe instead")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    result = through_torchserve(args) if args.torchserve else measure(args)
    result["cpu"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

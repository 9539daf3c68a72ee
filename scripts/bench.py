"""Benchmark MSG-Net inference on this machine: prints a table, writes JSON.

    .venv/bin/python -m scripts.bench                      # everything (~10 min on 2 cores)
    .venv/bin/python -m scripts.bench --skip-torchserve --sizes 256,512 --variants eager,fast

Parts (each can be skipped): the machine's fp32 matmul GFLOP/s; in-process latency per size and
inference variant, each variant in a process of its own (median of --runs after --warmup, ratio
to ``eager`` measured in this run and in the same rounds, achieved GFLOP/s); peak RSS per
(variant, size) in a fresh subprocess (``ru_maxrss`` of the child, through the served path:
Stylizer, tiled above the threshold); PSNR of each variant against eager fp32 on photos;
tiled-vs-full PSNR and the seam ratio at 1024²; TorchServe cold start, end-to-end latency and
throughput with 1/4/8 concurrent clients (a private server on free ports).

Weights: weights/msgnet-21styles.pt when present, else a seeded random ngf=128 net (speed and
memory do not depend on the weight values; PSNR on random weights is only indicative).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from msgnet.checkpoint import LoadedWeights, load_weights, save_weights
from msgnet.evaluate import psnr
from msgnet.fast import FastMSGNet
from msgnet.imageio import image_to_bgr, resize_longest
from msgnet.model import Net
from msgnet.stylize import Stylizer, pad_to_multiple
from msgnet.tiling import TileConfig, receptive_field, tiled_stylize_one
from msgnet.variants import DEFAULT_VARIANT, VARIANTS, build_variant
from scripts import ts_client
from scripts.ts_private import PrivateTorchServe

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"
SHARED = ROOT.parent / "shared" / "data"
PYTHON = sys.executable
BENCH_PRESET = "bench"
MAX_SIZE_UNDER_TEST = 4096


# ---------------------------------------------------------------------------- inputs
def parse_size(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``1024x768`` -> (h=768, w=1024) (width x height, as photos)."""
    if "x" in text:
        w, h = text.lower().split("x")
        return int(h), int(w)
    return int(text), int(text)


def size_label(hw: tuple[int, int]) -> str:
    h, w = hw
    return f"{w}²" if h == w else f"{w}x{h}"


def photos(limit: int = 3) -> list[tuple[str, Image.Image]]:
    """Real photos from ../shared when present, else the procedural demo scene."""
    found = sorted((SHARED / "content" / "coco128").glob("*.jpg"))[:limit]
    if found:
        return [(p.name, Image.open(p).convert("RGB")) for p in found]
    from msgnet.preview import demo_scene
    return [(f"demo_scene(seed={s})", demo_scene(1024, 768, seed=s)) for s in range(limit)]


def style_image() -> tuple[str, Image.Image]:
    path = SHARED / "styles" / "21styles" / "candy.jpg"
    if path.is_file():
        return path.name, Image.open(path).convert("RGB")
    from msgnet.preview import demo_scene
    return "demo_scene (mirrored)", demo_scene(512, 512, seed=3).transpose(0)


def photo_tensor(hw: tuple[int, int], index: int = 0) -> torch.Tensor:
    """A photo cropped to the aspect of ``hw`` and resized to it, BGR (1, 3, h, w)."""
    _, img = photos(index + 1)[index]
    h, w = hw
    scale = max(w / img.width, h / img.height)
    img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                     Image.Resampling.BICUBIC)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return image_to_bgr(img.crop((left, top, left + w, top + h)))


def prepare_weights(path: Path | None, workdir: Path) -> tuple[Path, str]:
    """The weights file to benchmark and a note on where it came from."""
    if path is not None and path.is_file():
        return path, f"weights file {path}"
    torch.manual_seed(0)
    net = Net(ngf=128).eval()
    with torch.no_grad():
        net.model[-1].conv2d.bias.uniform_(60.0, 190.0)
    _, style = style_image()
    with torch.inference_mode():
        gram = net.style_target(image_to_bgr(resize_longest(style, 512)))
    out = save_weights(workdir / "bench-random-ngf128.pt", net, {BENCH_PRESET: gram},
                       {"source": "scripts/bench.py: seeded random ngf=128"})
    return out, ("seeded random ngf=128 net (no weights/msgnet-21styles.pt): speed and memory "
                 "do not depend on weight values; PSNR on random weights is only indicative")


def target_for(loaded: LoadedWeights, net: Net) -> torch.Tensor:
    if loaded.presets:
        name = BENCH_PRESET if BENCH_PRESET in loaded.presets else sorted(loaded.presets)[0]
        return loaded.presets[name].float().reshape(1, net.channels, net.channels)
    _, style = style_image()
    with torch.inference_mode():
        return net.style_target(image_to_bgr(resize_longest(style, 512)))


# ---------------------------------------------------------------------------- measurements
def median_time(fn, runs: int, warmup: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def matmul_gflops(n: int = 2048, runs: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    med, _ = median_time(lambda: a @ b, runs, 1)
    return 2 * n ** 3 / med / 1e9


def model_flops(net: Net, hw: tuple[int, int]) -> float:
    """FLOPs of one eager forward at ``hw`` (convolutions + Inspiration), counted at 64² on
    the real graph with hooks and scaled by pixels (every layer's output scales exactly)."""
    flops = 0.0

    def hook(module: torch.nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal flops
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        flops += 2.0 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, torch.nn.Conv2d)]
    try:
        x = torch.rand(1, 3, 64, 64) * 255
        with torch.inference_mode():
            g = net.style_target(x)
            flops = 0.0
            net.stylize(x, g)
    finally:
        for h in handles:
            h.remove()
    c = net.channels
    flops += 2.0 * c * c * 16 * 16  # Inspiration: (C x C) @ (C x H/4*W/4)
    return flops * hw[0] * hw[1] / (64 * 64)


def seam_ratio(out: torch.Tensor, tile: int) -> dict[str, float]:
    """Mean |difference| across tile borders vs between neighbouring columns/rows inside tiles."""
    _, _, h, w = out.shape
    dx = (out[..., 1:] - out[..., :-1]).abs().mean(dim=(0, 1, 2))  # (w-1,): col j vs j+1
    dy = (out[..., 1:, :] - out[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    bx = [c - 1 for c in range(tile, w, tile)]
    by = [r - 1 for r in range(tile, h, tile)]
    inner_x = [j for j in range(w - 1) if j not in bx]
    inner_y = [i for i in range(h - 1) if i not in by]
    across = float(torch.cat([dx[bx], dy[by]]).mean())
    inside = float(torch.cat([dx[inner_x], dy[inner_y]]).mean())
    return {"across_borders": across, "inside_tiles": inside, "ratio": across / inside}


# ---------------------------------------------------------------------------- parts
class LatencyWorker:
    """One inference variant in a process of its own, timed on request over a pipe.

    Why a process per variant: a variant may change process-wide state. ``fast`` tunes glibc's
    allocator, and that alone makes the eager model about 1.9x faster at 512², so an ``eager``
    timed in the same process is no longer the baseline. Each worker builds its variant once
    and answers ``{"size": [h, w], "calls": n}`` with the ``n`` call times.
    """

    def __init__(self, name: str, weights: Path, threads: int):
        self.name = name
        cmd = [PYTHON, "-m", "scripts.bench", "--latency-worker", name,
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
    from msgnet.fast import allocator_tuned

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
            _ratios(results)
            if progress is not None:
                progress(results)
    finally:
        for worker in workers.values():
            worker.close()
    return results


def _ratios(results: dict[str, Any], baseline: dict[str, Any] | None = None) -> None:
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
        cmd = [PYTHON, "-m", "scripts.bench", "--rss-child-variant", name,
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


def bench_quality(loaded: LoadedWeights, variants: list[str]) -> dict[str, Any]:
    net = loaded.net
    target = target_for(loaded, net)
    pics = photos(3)
    xs = [pad_to_multiple(image_to_bgr(resize_longest(img, 512))) for _, img in pics]
    with torch.inference_mode():
        refs = [net.stylize(x, target).clamp(0, 255) for x in xs]
    results: dict[str, Any] = {"photos": [n for n, _ in pics], "size": 512, "variants": {}}
    for name in variants:
        if name == "eager":
            continue
        impl = build_variant(name, net)
        values = [psnr(impl(x, target), ref) for x, ref in zip(xs, refs, strict=True)]
        results["variants"][name] = {"psnr_db": values, "min_psnr_db": min(values)}
        print(f"  psnr {name:8s} vs eager: min {min(values):.1f} dB", flush=True)
    # tiled vs full at 1024²: the served settings forced on (1024² itself is not tiled when
    # served), then 256 px tiles (3 borders per axis for the seam ratio) with the thumbnail
    # downscaled as much as the served config downscales a 2048 px image, and at half size
    runner = FastMSGNet(net)
    served = TileConfig()
    x = photo_tensor((1024, 1024))
    full = runner(x, target).clamp(0, 255)
    same_ratio = max(16, round(1024 * served.thumb_size / 2048 / 4) * 4)
    results["tiled_1024"] = {"receptive_field_px": receptive_field(runner, net.channels),
                             "runs": []}
    configs = [TileConfig(threshold_pixels=0)] + [
        TileConfig(threshold_pixels=0, tile=256, halo=served.halo, blend=served.blend,
                   thumb_size=thumb) for thumb in sorted({same_ratio, 512})]
    for cfg in configs:
        tiled = tiled_stylize_one(runner, x, target[0], cfg).clamp(0, 255)
        run = {"config": cfg.__dict__, "psnr_vs_full_db": psnr(tiled, full),
               "seams": seam_ratio(tiled, cfg.tile),
               "seam_ratio_untiled_reference": seam_ratio(full, cfg.tile)["ratio"]}
        results["tiled_1024"]["runs"].append(run)
        print(f"  tiled vs full 1024² (tile {cfg.tile}, thumb {cfg.thumb_size}): "
              f"{run['psnr_vs_full_db']:.1f} dB, seam ratio {run['seams']['ratio']:.2f} "
              f"(untiled {run['seam_ratio_untiled_reference']:.2f})", flush=True)
    print(f"  receptive field {results['tiled_1024']['receptive_field_px']} px "
          f"(halo {served.halo})", flush=True)
    return results


# ---------------------------------------------------------------------------- TorchServe
def bench_server(weights: Path, workdir: Path, workers: int, threads: int) -> PrivateTorchServe:
    """A private TorchServe with ``workers`` x ``threads`` and the benchmark's .mar built."""
    import yaml
    server = PrivateTorchServe(
        workdir / f"ts-w{workers}", default_workers_per_model=str(workers),
        # the largest output size through the environment, as a deployment would set it; the
        # presets answer must then report it (checked in bench_torchserve)
        env={"MSGNET_MAX_SIZE": str(MAX_SIZE_UNDER_TEST)})
    cfg = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
    cfg.update(minWorkers=workers, maxWorkers=workers)
    cfg["handler"]["threads"] = threads
    model_config = server.base / "model-config.yaml"
    model_config.write_text(yaml.safe_dump(cfg))
    server.build_mar(weights, "--version", "bench", "--model-config", str(model_config),
                     "--no-check")
    return server


def predict(server: PrivateTorchServe, body: bytes, ctype: str) -> float:
    """One prediction; its wall time."""
    t = time.perf_counter()
    status, _ = ts_client.call("POST", server.predictions_url(), server.keys().inference, body,
                               {"Content-Type": ctype}, timeout=600)
    assert status == 200
    return time.perf_counter() - t


def presets_listing(server: PrivateTorchServe) -> dict:
    _, data = ts_client.call("POST", server.predictions_url(), server.keys().inference,
                             json.dumps({"action": "presets"}).encode(),
                             {"Content-Type": "application/json"})
    return data


def bench_torchserve(weights: Path, workdir: Path, worker_plans: list[int], cores: int,
                     runs: int, clients: list[int], per_client: int) -> dict[str, Any]:
    loaded = load_weights(weights)
    preset = BENCH_PRESET if BENCH_PRESET in loaded.presets else sorted(loaded.presets)[0]
    buf = io.BytesIO()
    img = Image.fromarray(photo_tensor((512, 512))[0].flip(0).permute(1, 2, 0)
                          .round().clamp(0, 255).byte().numpy())
    img.save(buf, "JPEG", quality=92)
    body, ctype = ts_client.multipart([("content", buf.getvalue(), "photo.jpg"),
                                       ("style_id", preset.encode(), None),
                                       ("size", b"512", None)])
    results: dict[str, Any] = {"image": "512x512 JPEG, preset, size=512, JPEG answer"}
    # the same request in process (decode, resize, stylize, encode), for the server's overhead
    from msgnet import imageio
    stylizer = Stylizer(loaded)
    target = stylizer.preset_target(preset)
    jpeg = buf.getvalue()

    def in_process() -> None:
        image = imageio.decode_image(jpeg, draft_longest=512)
        out = stylizer.run([stylizer.prepare_content(image, 512)], [target])[0]
        imageio.encode_image(imageio.bgr_to_image(out), fmt="jpeg", quality=92)

    med, times = median_time(in_process, runs, 1)
    results["in_process_full_path_s"] = med
    print(f"  in-process full path (decode+stylize+encode) 512²: {med:.3f} s", flush=True)
    for workers in worker_plans:
        threads = max(1, cores // workers)
        key = f"{workers}x{threads}"
        server: PrivateTorchServe | None = None
        entry: dict[str, Any] = {"workers": workers, "threads_per_worker": threads}
        try:
            t = time.perf_counter()
            server = bench_server(weights, workdir, workers, threads)
            entry["build_mar_s"] = time.perf_counter() - t
            entry["start_to_ready_s"] = server.start(timeout=300, workers=workers)
            t = time.perf_counter()
            entry["first_request_s"] = predict(server, body, ctype)
            entry["start_to_first_prediction_s"] = entry["start_to_ready_s"] + (
                time.perf_counter() - t)
            listing = presets_listing(server)
            entry["max_size"], entry["sizes"] = listing.get("max_size"), listing.get("sizes")
            entry["variant"] = listing.get("variant")
            if (entry["max_size"] != MAX_SIZE_UNDER_TEST
                    or MAX_SIZE_UNDER_TEST not in (entry["sizes"] or [])):
                raise RuntimeError(f"MSGNET_MAX_SIZE={MAX_SIZE_UNDER_TEST} not reported: "
                                   f"{listing}")
            med, times = median_time(lambda s=server: predict(s, body, ctype), runs, 1)
            entry["e2e_median_s"], entry["e2e_times_s"] = med, times
            print(f"  torchserve {key}: ready {entry['start_to_ready_s']:.1f} s, first "
                  f"{entry['first_request_s']:.2f} s, e2e median {med:.3f} s", flush=True)
            entry["throughput"] = {}
            for n in clients:
                total = n * per_client
                t = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(n) as pool:
                    lat = list(pool.map(lambda _i, s=server: predict(s, body, ctype),
                                        range(total)))
                wall = time.perf_counter() - t
                entry["throughput"][str(n)] = {"images": total, "wall_s": wall,
                                               "images_per_min": total / wall * 60,
                                               "median_latency_s": statistics.median(lat)}
                print(f"  torchserve {key}: {n} clients -> {total / wall * 60:.1f} images/min "
                      f"(median latency {statistics.median(lat):.2f} s)", flush=True)
        except Exception as exc:  # report, keep the other parts
            entry["error"] = f"{type(exc).__name__}: {exc}"
            print(f"  torchserve {key}: FAILED {entry['error']}", flush=True)
        finally:
            if server is not None:
                server.stop()
        results[key] = entry
    return results


# ---------------------------------------------------------------------------- report
def table(report: dict[str, Any]) -> str:
    lines: list[str] = []
    lat = report.get("latency")
    if lat:
        variants = list(lat["variants"])
        sizes = list(next(iter(lat["variants"].values()))["sizes"])
        lines += ["| size | " + " | ".join(f"{v} s (×eager)" for v in variants)
                  + " | best GFLOP/s |", "|---" * (len(variants) + 2) + "|"]
        for label in sizes:
            cells, best = [], 0.0
            for v in variants:
                m = lat["variants"][v]["sizes"].get(label)
                if m is None:
                    cells.append("—")
                    continue
                ratio = m.get("speedup_vs_eager")
                cells.append(f"{m['median_s']:.3f}" + (f" ({ratio:.2f}×)" if ratio else ""))
                best = max(best, m["gflops_per_s"])
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {best:.0f} |")
        lines.append("")
        starts = []
        for v in variants:
            e = lat["variants"][v]
            first_label = next(iter(e["sizes"]))
            starts.append(f"{v} {e['build_s']:.1f} s + first call at {first_label} "
                          f"{e['sizes'][first_label]['first_call_s']:.1f} s")
        lines += ["Start-up (build + first call): " + "; ".join(starts) + ".", ""]
        rounds = [f"{v} {label} {m['round_speedup_vs_eager']:.2f}×"
                  for v in variants if v != "eager"
                  for label, m in lat["variants"][v]["sizes"].items()
                  if m.get("round_speedup_vs_eager")]
        if rounds:
            lines += ["Median of the per-round ratios to eager (each round times every variant "
                      "once, each in its own process): " + "; ".join(rounds) + ".", ""]
        tuned = [v for v in variants if lat["variants"][v].get("allocator_tuned")]
        lines += ["Tuned allocator (process-wide) in: " + (", ".join(tuned) or "none") + ".", ""]
        if "matmul_2048_gflops" in report:
            lines += [f"2048² fp32 matmul: {report['matmul_2048_gflops']:.0f} GFLOP/s "
                      f"(GFLOP/s above count the eager model's FLOPs: "
                      + ", ".join(f"{k} {v:.1f} GFLOP" for k, v in
                                  lat.get("gflop_per_image", {}).items()) + ").", ""]
    rss = report.get("rss")
    if rss:
        lines += ["| variant | size | peak RSS GB | seconds | tiled |", "|---|---|---|---|---|"]
        for v, per in rss.items():
            for label, m in per.items():
                if "error" in m:
                    lines.append(f"| {v} | {label} | failed | | |")
                else:
                    lines.append(f"| {v} | {label} | {m['peak_rss_gb']:.2f} | "
                                 f"{m['seconds']:.1f} | {'yes' if m['tiled'] else 'no'} |")
        lines.append("")
    q = report.get("quality")
    if q:
        lines += ["| quality | value |", "|---|---|"]
        for v, m in q["variants"].items():
            lines.append(f"| {v} vs eager, PSNR min over {len(m['psnr_db'])} photos @512 | "
                         f"{m['min_psnr_db']:.1f} dB |")
        t = q["tiled_1024"]
        for run in t["runs"]:
            cfg = f"tile {run['config']['tile']}, thumb {run['config']['thumb_size']}"
            lines += [f"| tiled vs full 1024² ({cfg}), PSNR | "
                      f"{run['psnr_vs_full_db']:.1f} dB |",
                      f"| seam ratio, {cfg} (across borders / inside tiles; untiled "
                      f"{run['seam_ratio_untiled_reference']:.2f}) | "
                      f"{run['seams']['ratio']:.2f} |"]
        lines += [f"| receptive field radius (halo {TileConfig().halo}) | "
                  f"{t['receptive_field_px']} px |", ""]
    ts = report.get("torchserve")
    if ts:
        lines += ["| TorchServe workers×threads | start→READY s | first req s | e2e 512² s "
                  "| img/min @1 | @4 | @8 |", "|---|---|---|---|---|---|---|"]
        for key, m in ts.items():
            if not isinstance(m, dict) or "workers" not in m:
                continue
            if "error" in m:
                lines.append(f"| {key} | failed: {m['error'][:60]} | | | | | |")
                continue
            tp = m.get("throughput", {})
            cells = [f"{tp[c]['images_per_min']:.1f}" if c in tp else "" for c in ("1", "4", "8")]
            lines.append(f"| {key} | {m['start_to_ready_s']:.1f} | {m['first_request_s']:.2f} | "
                         f"{m['e2e_median_s']:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
        inproc = ts.get("in_process_full_path_s")
        one = next((m for m in ts.values() if isinstance(m, dict) and "e2e_median_s" in m), None)
        if inproc and one:
            lines += [f"In process, same request (decode + stylize + encode): {inproc:.3f} s; "
                      f"TorchServe e2e ({one['workers']}×{one['threads_per_worker']}) is "
                      f"{(one['e2e_median_s'] / inproc - 1) * 100:+.0f}% of that.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
            "machine": {"cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)),
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
                _ratios(extra, lat["variants"].get("eager"))
                lat["variants"].update(extra["variants"])
        save()
    print("\n" + table(report))
    print(f"JSON: {args.out}  ({report['total_s']:.0f} s)")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())

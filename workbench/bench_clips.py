"""Clip measurements (issue 14): time per frame and per clip at 256 and 480 px in process,
flicker with and without shared instance-norm statistics, and through a private TorchServe a
10 s 480 px clip on the clip model: its wall time, the clip worker's peak RSS, and the latency
of photos sent meanwhile (clip on its own model vs on the photo model).

    .venv/bin/python -m workbench.bench_clips [--json docs/animation_bench.json] [--no-serve]

Prints a table and writes the JSON docs/animation.md quotes. Inputs are generated
(fakes/clips.py: a scene with a big ball crossing it, 16:9), nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from fakes import clips as cs
from workbench.bench.inputs import cpu_name

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"
PRESET = "candy"


def in_process(seconds: float, fps: float, threads: int) -> dict:
    """Per-frame and per-clip time at 256 and 480 px, and flicker for each reference."""
    from msgnet.animation.stylize import stylize_clip
    from msgnet.inference.stylize import Stylizer

    torch.set_num_threads(threads)
    stylizer = Stylizer.from_file(WEIGHTS)
    target = stylizer.preset_target(PRESET)
    n = round(seconds * fps)
    clip = cs.video(n, fps, width=480, height=270)
    short = cs.video(round(2 * fps), fps, width=480, height=270)
    out: dict = {"threads": threads, "clip_frames": n, "clip_seconds": seconds, "fps": fps,
                 "timing": {}, "flicker": {}}
    for size in (256, 480):
        stylize_clip(short, stylizer, target, size=size, chunk=8)  # warm-up
        result = stylize_clip(clip, stylizer, target, size=size)
        out["timing"][size] = {"frames": result.frames, "clip_s": round(result.elapsed_s, 2),
                               "frame_ms": round(1000 * result.elapsed_s / result.frames, 1),
                               "bytes": len(result.body)}
        print(f"{size} px: {result.frames} frames in {result.elapsed_s:.1f} s "
              f"({1000 * result.elapsed_s / result.frames:.0f} ms a frame)", flush=True)
        flicker = {}
        for reference in ("off", "first", "running"):
            r = stylize_clip(short, stylizer, target, size=size, reference=reference,
                             measure_flicker=True)
            flicker[reference] = {"ratio": round(r.flicker.ratio, 3),
                                  "input_change": round(r.flicker.input_change, 2),
                                  "output_change": round(r.flicker.output_change, 2)}
            print(f"  flicker {reference}: {r.flicker.ratio:.3f}", flush=True)
        out["flicker"][size] = flicker
    return out


class _RssSampler(threading.Thread):
    """Peak RSS of one process, sampled every 0.1 s until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self.idle = self.peak
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except Exception:
                return


def _post(url: str, key: str, fields: list, timeout: float = 900) -> tuple[int, bytes, float]:
    import tsclient

    body, ctype = tsclient.multipart(fields)
    started = time.perf_counter()
    try:
        status, answer = tsclient.call("POST", url, key, body, {"Content-Type": ctype},
                                        timeout=timeout)
    except tsclient.TorchServeError as exc:
        status, answer = exc.args[1] if len(exc.args) > 1 else 0, b""
    return status, answer, time.perf_counter() - started


def through_torchserve(seconds: float, fps: float) -> dict:
    """Clip wall time and worker peak RSS; photo latency alone, beside a clip on its own
    model, and queued on the same model as the clip."""
    import io

    from PIL import Image

    import tsclient
    from scripts import clip_model
    from tsclient.private import PrivateTorchServe

    clip = cs.video(round(seconds * fps), fps, width=854, height=480)
    photo = io.BytesIO()
    Image.fromarray(cs.frames(1, 640, 480)[0]).save(photo, "JPEG")
    photo_fields = [("content", photo.getvalue(), "p.jpg"), ("style_id", PRESET.encode(), None),
                    ("size", b"512", None)]
    clip_fields = [("content", clip, "c.mp4"), ("style_id", PRESET.encode(), None)]
    # on the photo model a clip must end within its responseTimeout (150 s): a shorter one
    short = cs.video(round(min(seconds, 4.0) * fps), fps, width=854, height=480)
    short_fields = [("content", short, "s.mp4"), ("style_id", PRESET.encode(), None)]
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as tmp:
        server = PrivateTorchServe(Path(tmp))
        server.build_mar(WEIGHTS, "--version", "1.0")
        clip_model.build(server.store, ["--weights", str(WEIGHTS), "--version", "1.0"])
        with server.running(timeout=300):
            key = server.keys().inference
            print(clip_model.register(server.endpoints, server.key_file))
            base = f"{server.endpoints.inference}/predictions"
            _, described = tsclient.call(
                "GET", f"{server.endpoints.management}/models/{clip_model.CLIP_MODEL}",
                server.keys().management)
            clip_pid = int(described[0]["workers"][0]["pid"])
            # a photo queued behind a clip on its own model is dropped after 30 s
            # (clientTimeoutInMills) without an answer: do not wait for it much longer
            alone = [_post(f"{base}/msgnet", key, photo_fields, 150)[2] for _ in range(4)]
            out["photo_alone_s"] = round(statistics.median(alone), 2)
            for where in ("msgnet_clip", "msgnet"):
                sampler = _RssSampler(clip_pid) if where == "msgnet_clip" else None
                if sampler:
                    sampler.start()
                result: dict = {}
                fields = clip_fields if where == "msgnet_clip" else short_fields

                # the photo model drops answers later than its clientTimeoutInMills (30 s)
                wait = 900 if where == "msgnet_clip" else 120

                def send(w: str = where, r: dict = result, f: list = fields,
                         t: float = wait) -> None:
                    r.update(zip(("status", "body", "wall_s"),
                                 _post(f"{base}/{w}", key, f, timeout=t), strict=True))

                worker = threading.Thread(target=send)
                worker.start()
                time.sleep(3.0)  # the clip is being stylized: its frames take minutes
                beside = []
                while worker.is_alive() and len(beside) < 4:
                    status, _, took = _post(f"{base}/msgnet", key, photo_fields, 150)
                    beside.append(took if status == 200 else f"{status or 'no answer'} "
                                                             f"after {took:.0f} s")
                worker.join()
                entry = {"status": result["status"], "clip_wall_s": round(result["wall_s"], 1),
                         "clip_input_s": seconds if where == "msgnet_clip" else min(seconds, 4),
                         "photo_latency_s": [round(b, 2) if isinstance(b, float) else b
                                             for b in beside]}
                if sampler:
                    sampler.stop.set()
                    sampler.join()
                    entry["worker_rss_idle_mb"] = round(sampler.idle / 2**20)
                    entry["worker_rss_peak_mb"] = round(sampler.peak / 2**20)
                if result["status"] == 200:
                    from msgnet.animation.decode import open_clip

                    info = open_clip(result["body"]).info
                    entry["output"] = {"frames": info.frames, "fps": info.fps,
                                       "seconds": round(info.seconds, 2),
                                       "size": f"{info.width}x{info.height}"}
                out[f"clip_on_{where}"] = entry
                print(where, entry, flush=True)
    out["clip_input"] = {"seconds": seconds, "fps": fps, "size": "854x480"}
    return out


def table(report: dict) -> str:
    lines = [f"CPU: {report['cpu']} ({report['cores']} cores, shared with training)"]
    proc = report.get("in_process")
    if proc:
        lines.append(f"in process, {proc['threads']} thread(s), {proc['clip_frames']} frames "
                     f"({proc['clip_seconds']:g} s at {proc['fps']:g} fps):")
        lines.append("size  ms/frame  s/clip  flicker off  first  running")
        for size, t in proc["timing"].items():
            f = proc["flicker"][size]
            lines.append(f"{size:>4}  {t['frame_ms']:>8}  {t['clip_s']:>6}  "
                         f"{f['off']['ratio']:>11}  {f['first']['ratio']:>5}  "
                         f"{f['running']['ratio']:>7}")
    serve = report.get("torchserve")
    if serve:
        lines.append(f"TorchServe: photo alone {serve['photo_alone_s']} s")
        for where in ("msgnet_clip", "msgnet"):
            e = serve[f"clip_on_{where}"]
            lines.append(f"  clip on {where}: {e['clip_wall_s']} s, photos meanwhile "
                         f"{e['photo_latency_s']} s"
                         + (f", worker RSS {e.get('worker_rss_idle_mb')} -> "
                            f"{e.get('worker_rss_peak_mb')} MB" if "worker_rss_peak_mb" in e
                            else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-serve", action="store_true", help="in process only")
    p.add_argument("--no-local", action="store_true", help="TorchServe only")
    args = p.parse_args(argv)
    import os

    report: dict = {"cpu": cpu_name(), "cores": os.cpu_count(), "weights": WEIGHTS.name,
                    "preset": PRESET}
    if not args.no_local:
        report["in_process"] = in_process(args.seconds, args.fps, args.threads)
        if args.json:  # kept if the TorchServe part fails
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_serve:
        report["torchserve"] = through_torchserve(args.seconds, args.fps)
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

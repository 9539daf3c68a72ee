"""TorchServe cold start, end-to-end latency and throughput (a private server)."""

from __future__ import annotations

import concurrent.futures
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

from PIL import Image

import tsclient
from msgnet.inference.stylize import Stylizer
from msgnet.model.checkpoint import load_weights
from tsclient.private import PrivateTorchServe
from workbench.bench.inputs import (
    BENCH_PRESET,
    MAX_SIZE_UNDER_TEST,
    ROOT,
    median_time,
    photo_tensor,
)


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
    status, _ = tsclient.call("POST", server.predictions_url(), server.keys().inference, body,
                               {"Content-Type": ctype}, timeout=600)
    assert status == 200
    return time.perf_counter() - t


def presets_listing(server: PrivateTorchServe) -> dict:
    _, data = tsclient.call("POST", server.predictions_url(), server.keys().inference,
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
    body, ctype = tsclient.multipart([("content", buf.getvalue(), "photo.jpg"),
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



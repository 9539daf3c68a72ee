"""REST load (issue 15, section 2): C concurrent clients against a real TorchServe (shipped
weights, the normal .mar) for a bounded time, one request in ten bad (corrupt bytes, unknown
preset, oversize, truncated JPEG, a header that lies). Reports throughput, latency p50/p95,
status counts (503 apart from other 5xx), whether a worker restarted, and RSS (first/peak/last).

A 503 means the queue is full (jobQueueSize 8 + a batch of 4 in handler/model-config.yaml);
like the bot and scripts/batch_stylize.py, the client retries it with exponential backoff
(``--retries 0`` to see raw 503s).

    .venv/bin/python -m workbench.load_rest --clients 16 --seconds 120 --json docs/load_rest.json
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import tempfile
import time
from pathlib import Path

import aiohttp

from workbench import load_common as lc

SIZES = [256, 384, 512]
PRESETS = ["candy", "mosaic", "udnie", "wave", "the_scream"]
BAD_KINDS = ["corrupt", "unknown_preset", "oversize", "truncated", "lying_header"]


def request_fields(i: int, presets: list[str] = PRESETS) -> tuple[str, dict]:
    """Request ``i``: every tenth is bad (its kind cycles), the rest good with mixed sizes."""
    from fakes.images import encode, noise_image, png_header_only

    w, h = [(320, 240), (256, 384), (400, 400), (480, 270)][i % 4]
    good = {"content": encode(noise_image(w, h, seed=i % 7), "JPEG", quality=85),
            "style_id": presets[i % len(presets)], "size": SIZES[i % len(SIZES)]}
    if i % 10 != 9:
        return "good", good
    kind = BAD_KINDS[(i // 10) % len(BAD_KINDS)]
    if kind == "corrupt":
        good["content"] = bytes((j * 131 + i) % 256 for j in range(4000))
    elif kind == "unknown_preset":
        good["style_id"] = "no_such_style"
    elif kind == "oversize":
        good["size"] = 100_000
    elif kind == "truncated":
        good["content"] = good["content"][: len(good["content"]) // 2]
    else:
        good["content"] = png_header_only(60_000, 60_000)
    return kind, good


async def _client(session: aiohttp.ClientSession, url: str, headers: dict, deadline: float,
                  counter: list[int], out: list[dict], retries: int, backoff: float,
                  presets: list[str]) -> None:
    from tsclient.form import aiohttp_form, upload_form

    while time.monotonic() < deadline:
        i = counter[0]
        counter[0] += 1
        kind, fields = request_fields(i, presets)
        started = time.monotonic()
        seen_503 = 0
        for attempt in range(retries + 1):
            try:
                async with session.post(url, data=aiohttp_form(upload_form(**fields)),
                                        headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except aiohttp.ClientError as exc:
                status = f"connection error: {type(exc).__name__}"
            if status != 503 or attempt == retries:
                break
            seen_503 += 1
            await asyncio.sleep(backoff * 2 ** attempt)
        out.append({"kind": kind, "status": status, "attempts_503": seen_503,
                    "seconds": round(time.monotonic() - started, 3)})


async def run(clients: int, seconds: float, workdir: Path, weights: Path = lc.WEIGHTS,
              retries: int = 3, backoff: float = 0.5,
              presets: list[str] = PRESETS, first: int = 0) -> dict:
    """Start TorchServe, run the clients for ``seconds``, stop it; the report. ``first``: the
    index of the first request (9 makes a short smoke run begin with a bad one)."""
    report: dict = {"tool": "workbench/load_rest.py", "clients": clients, "seconds": seconds,
                    "retries_on_503": retries, "backoff_s": backoff, "machine": lc.machine(),
                    "bad_fraction": 0.1, "bad_kinds": BAD_KINDS, "sizes": SIZES}
    server = await asyncio.to_thread(lc.start_torchserve, workdir / "ts", weights)
    try:
        workers_before = lc.worker_pids(server)
        sampler = lc.Sampler({
            "worker_rss_mb": lambda: sum(lc.rss_mb(p) for p in lc.worker_pids(server)),
            "frontend_rss_mb": lambda: lc.rss_mb(lc.frontend_pid(server))})
        sampler.start()
        out: list[dict] = []
        counter = [first]
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            started = time.monotonic()
            await asyncio.gather(*(_client(session, server.predictions_url(), server.auth(),
                                           started + seconds, counter, out, retries, backoff,
                                           presets)
                                   for _ in range(clients)))
            wall = time.monotonic() - started
        memory = sampler.stop()
        workers_after = lc.worker_pids(server)
    finally:
        await asyncio.to_thread(server.stop)
    statuses = collections.Counter(str(r["status"]) for r in out)
    by_kind = {k: dict(collections.Counter(str(r["status"]) for r in out if r["kind"] == k))
               for k in ["good", *BAD_KINDS]}
    ok = [r["seconds"] for r in out if r["status"] == 200]
    other_5xx = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500
                    and s != "503")
    report.update({
        "requests": len(out), "wall_s": round(wall, 1), "status_counts": dict(statuses),
        "by_kind": by_kind, "final_503": statuses.get("503", 0), "other_5xx": other_5xx,
        "503_answers_retried": sum(r["attempts_503"] for r in out),
        "bad_not_4xx": sum(1 for r in out if r["kind"] != "good"
                           and not (isinstance(r["status"], int) and 400 <= r["status"] < 500)),
        "throughput_ok_per_s": round(len(ok) / wall, 3) if wall else None,
        "latency_ok_s": {"p50": lc.percentile(ok, 50), "p95": lc.percentile(ok, 95),
                         "max": round(max(ok), 3) if ok else None},
        "memory_mb": memory, "worker_restarted": workers_after != workers_before,
    })
    return report


def summary(report: dict) -> str:
    lat = report["latency_ok_s"]
    return lc.table([
        ("clients x seconds", f"{report['clients']} x {report['seconds']}"),
        ("requests (wall s)", f"{report['requests']} ({report['wall_s']})"),
        ("status counts", report["status_counts"]),
        ("503 final / retried", f"{report['final_503']} / {report['503_answers_retried']}"),
        ("other 5xx", report["other_5xx"]),
        ("bad requests not 4xx", report["bad_not_4xx"]),
        ("200/s", report["throughput_ok_per_s"]),
        ("latency 200 p50/p95/max s", f"{lat['p50']} / {lat['p95']} / {lat['max']}"),
        ("worker RSS MB", report["memory_mb"]["worker_rss_mb"]),
        ("frontend RSS MB", report["memory_mb"]["frontend_rss_mb"]),
        ("worker restarted", report["worker_restarted"]),
        ("cpu", f"{report['machine']['cpu']} x{report['machine']['cores']}"),
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--retries", type=int, default=3, help="extra attempts after a 503")
    p.add_argument("--backoff", type=float, default=0.5, help="first retry delay, seconds")
    p.add_argument("--weights", type=Path, default=lc.WEIGHTS)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="load-rest-") as tmp:
        report = asyncio.run(run(args.clients, args.seconds, Path(tmp), args.weights,
                                 args.retries, args.backoff))
    print(summary(report))
    lc.write_json(args.json, report)
    bad = report["other_5xx"] or report["worker_restarted"] or report["bad_not_4xx"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

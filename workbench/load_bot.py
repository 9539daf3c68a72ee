"""Load through the bot (issue 15, section 2): N simulated users x M jobs each, through the fake
Telegram Bot API (fakes/telegram/), the real bot process (fakes/bot_process.py)
and a real TorchServe serving the shipped weights, with mixed presets, uploaded styles and
sizes. Checks every result reaches the right user once; reports time to result (p50/p95), the
bot's longest queue (its own Prometheus gauge) and bot / worker RSS (peak).

    .venv/bin/python -m workbench.load_bot --users 50 --jobs 3 --json docs/load_bot.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

import tsclient
from workbench import load_common as lc

# (content width, height): mixed aspects and sizes; the output is the bot's size (below)
CONTENT_SIZES = [(320, 240), (256, 384), (480, 320), (400, 400), (512, 288)]
PRESETS = ["candy", "composition_vii", "escher_sphere", "feathers", "frida_kahlo"]  # page 1
JOB_WAIT = float(os.environ.get("LOAD_JOB_WAIT", "600"))


def _color(user_id: int, job: int) -> tuple[int, int, int]:
    return ((user_id * 37) % 256, (job * 91 + 40) % 256, (user_id * 13 + job * 7) % 256)


def expected_dims(w: int, h: int, size: int) -> tuple[int, int]:
    scale = size / max(w, h)
    return (round(w * scale), round(h * scale))


def plan(users: int, jobs: int, presets: list[str] = PRESETS) -> list[list[dict]]:
    """Each user's jobs: two thirds presets (cycled), one third an uploaded style; one user in
    five asks 768 px, the rest the default 512."""
    out = []
    for u in range(users):
        size = 768 if u % 5 == 4 else 512
        mine = []
        for j in range(jobs):
            w, h = CONTENT_SIZES[(u + j) % len(CONTENT_SIZES)]
            kind = "upload" if (u + j) % 3 == 2 else "preset"
            mine.append({"kind": kind, "preset": presets[(u * jobs + j) % len(presets)],
                         "content": (w, h), "size": size})
        out.append(mine)
    return out


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        text = resp.read().decode()
    values = {}
    for line in text.splitlines():
        m = re.match(r"^(bot_queue_waiting|bot_jobs_running) ([0-9.e+-]+)$", line)
        if m:
            values[m.group(1)] = float(m.group(2))
    return values


async def _user_jobs(tg, user, jobs: list[dict], record: list[dict]) -> None:
    """One simulated user: optionally /size, then its jobs one after another (the bot holds one
    job per user), timing each from the action that starts it to the result."""
    from bot.texts import Translator
    from fakes.images import jpeg, png
    from fakes.scenarios import use_preset

    if jobs and jobs[0]["size"] != 512:
        await user.send("/size")
        menu = await user.expect(lambda s: "Output size" in s.text, JOB_WAIT)
        await user.press(menu, str(jobs[0]["size"]))
        await user.expect_edit(menu.message_id, lambda s: str(jobs[0]["size"]) in s.text,
                               JOB_WAIT)
    held: tuple[int, int] | None = None  # the content the bot holds for this user
    for j, job in enumerate(jobs):
        entry = {"user": user.id, "job": j, **job, "ok": False}
        try:
            if job["kind"] == "preset":
                # a held photo gets the new preset at once ("another style"); else send one
                if held is None:
                    held = job["content"]
                    await user.send_photo(jpeg(*held, _color(user.id, j)))
                    await user.expect(lambda s: "Got the photo" in s.text, JOB_WAIT)
                entry["content"] = list(held)
                started = time.monotonic()
                await use_preset(user, job["preset"])
                want = f"Style: {Translator('en').title(job['preset'])} · "  # as captioned
            else:
                held = job["content"]
                started = time.monotonic()
                await user.send_album([("photo", jpeg(*held, _color(user.id, j))),
                                       ("document:style.png:image/png",
                                        png(64, 96, _color(j, user.id)))])
                want = "Style: your image"
            result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text,
                                       JOB_WAIT)
            entry["seconds"] = round(time.monotonic() - started, 3)
            with Image.open(io.BytesIO(result.photo)) as img:
                entry["dims"] = list(img.size)
            entry["caption"] = result.text
            entry["ok"] = (tuple(entry["dims"]) == expected_dims(*held, job["size"])
                           and result.text.startswith(want))
        except AssertionError as exc:  # a timeout of the fake API: recorded, not raised
            entry["error"] = " | ".join(str(exc).splitlines()[-6:])[:600]
        record.append(entry)


async def run(users: int, jobs: int, workdir: Path, weights: Path = lc.WEIGHTS,
              bot_env: dict[str, str] | None = None, presets: list[str] = PRESETS) -> dict:
    """Start TorchServe, the fake Bot API and the bot; run the users; stop everything."""
    from fakes.bot_process import BotProcess
    from fakes.telegram import TOKEN, FakeTelegram

    report: dict = {"tool": "workbench/load_bot.py", "users": users, "jobs_per_user": jobs,
                    "machine": lc.machine(), "weights": str(weights.relative_to(lc.ROOT))
                    if weights.is_relative_to(lc.ROOT) else str(weights)}
    t0 = time.monotonic()
    server = await asyncio.to_thread(lc.start_torchserve, workdir / "ts", weights)
    report["torchserve_ready_s"] = round(time.monotonic() - t0, 1)
    tg = FakeTelegram(TOKEN)
    await tg.start()
    metrics_port = tsclient.free_port()
    env = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.api_url,
           "TS_URL": server.endpoints.inference, "TS_KEY_FILE": str(server.key_file),
           "TS_TIMEOUT": "180", "ALBUM_DELAY": "0.4", "STATUS_INTERVAL": "3",
           "POLLING_TIMEOUT": "5", "SHUTDOWN_GRACE": "5", "LOG_LEVEL": "INFO",
           "METRICS_PORT": str(metrics_port), "RATE_LIMIT_BURST": "100",
           **(bot_env or {})}
    bot = BotProcess(env, workdir / "bot.log")
    sampler = None
    queue = {"waiting": 0.0, "running": 0.0}
    try:
        await bot.start_polling(tg, 60)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

        def waiting() -> float:
            values = _scrape(metrics_url)
            queue["waiting"] = max(queue["waiting"], values.get("bot_queue_waiting", 0))
            queue["running"] = max(queue["running"], values.get("bot_jobs_running", 0))
            return values.get("bot_queue_waiting", 0)

        workers_before = lc.worker_pids(server)
        sampler = lc.Sampler({"bot_rss_mb": lambda: lc.rss_mb(bot.proc.pid),
                              "worker_rss_mb": lambda: sum(lc.rss_mb(p)
                                                           for p in lc.worker_pids(server)),
                              "frontend_rss_mb": lambda: lc.rss_mb(lc.frontend_pid(server)),
                              "bot_queue_waiting": waiting})
        sampler.start()
        record: list[dict] = []
        people = [tg.user(10_000 + u, f"User{u}", "en") for u in range(users)]
        started = time.monotonic()
        await asyncio.gather(*(_user_jobs(tg, p, js, record)
                               for p, js in zip(people, plan(users, jobs, presets), strict=True)))
        wall = time.monotonic() - started
        await asyncio.sleep(2)  # anything sent late (a duplicate) is counted below
        memory = sampler.stop()
        sampler = None
        per_user = {p.id: sum(1 for s in p.sent() if s.method == "sendPhoto"
                                   and " px" in s.text) for p in people}
        known = {p.id for p in people}
        stray = sum(1 for e in tg.events if e.method == "sendPhoto"
                    and e.chat_id not in known)
        times = [r["seconds"] for r in record if "seconds" in r]
        report.update({
            "jobs": len(record), "delivered_ok": sum(r["ok"] for r in record),
            "failed": [r for r in record if not r["ok"]][:20],
            "results_per_user": {"expected": jobs, "min": min(per_user.values(), default=0),
                                 "max": max(per_user.values(), default=0),
                                 "users_with_wrong_count": sum(v != jobs
                                                               for v in per_user.values())},
            "results_to_unknown_chats": stray,
            "kinds": {k: sum(r["kind"] == k for r in record) for k in ("preset", "upload")},
            "sizes": {str(s): sum(r["size"] == s for r in record) for s in (512, 768)},
            "time_to_result_s": {"p50": lc.percentile(times, 50),
                                 "p95": lc.percentile(times, 95),
                                 "max": round(max(times), 3) if times else None},
            "wall_s": round(wall, 1),
            "throughput_jobs_per_min": round(len(times) / wall * 60, 2) if wall else None,
            "longest_queue": {"bot_queue_waiting": queue["waiting"],
                              "bot_jobs_running": queue["running"]},
            "memory_mb": memory,
            "worker_restarted": lc.worker_pids(server) != workers_before,
        })
    finally:  # each part stopped even if another's stop fails
        try:
            if sampler is not None:
                sampler.stop()
            await bot.stop()
            await tg.close()
        finally:
            await asyncio.to_thread(server.stop)
    return report


def summary(report: dict) -> str:
    t = report.get("time_to_result_s", {})
    m = report.get("memory_mb", {})
    return lc.table([
        ("users x jobs", f"{report['users']} x {report['jobs_per_user']}"),
        ("delivered ok", f"{report.get('delivered_ok')}/{report.get('jobs')}"),
        ("results per user", report.get("results_per_user")),
        ("results to unknown chats", report.get("results_to_unknown_chats")),
        ("time to result p50/p95/max s", f"{t.get('p50')} / {t.get('p95')} / {t.get('max')}"),
        ("wall s, jobs/min", f"{report.get('wall_s')}, {report.get('throughput_jobs_per_min')}"),
        ("longest bot queue", report.get("longest_queue")),
        ("bot RSS MB (first/peak/last)", m.get("bot_rss_mb")),
        ("worker RSS MB", m.get("worker_rss_mb")),
        ("frontend RSS MB", m.get("frontend_rss_mb")),
        ("worker restarted", report.get("worker_restarted")),
        ("cpu", f"{report['machine']['cpu']} x{report['machine']['cores']}"),
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--jobs", type=int, default=3, help="jobs per user")
    p.add_argument("--weights", type=Path, default=lc.WEIGHTS)
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="load-bot-") as tmp:
        report = asyncio.run(run(args.users, args.jobs, Path(tmp), args.weights))
    print(summary(report))
    lc.write_json(args.json, report)
    ok = (report.get("delivered_ok") == args.users * args.jobs
          and report["results_per_user"]["users_with_wrong_count"] == 0
          and report["results_to_unknown_chats"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

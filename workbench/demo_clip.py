"""A clip through the real bot: a private TorchServe with the photo and clip models, the fake
Telegram Bot API of the tests, the unmodified bot process, and a user who sends a video and
picks a preset. Prints the bot's messages, how often the status message showed progress, and
the time from the preset press to the stylized video (issue 14: "a 10 s 480p clip goes
through the bot").

    .venv/bin/python -m workbench.demo_clip [--seconds 10] [--fps 15] [--preset candy] [-o DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from fakes import clips as cs
from fakes.bot_process import BotProcess
from fakes.telegram import FakeTelegram
from scripts import clip_model
from tsclient.private import PrivateTorchServe
from workbench.demo_conversation import TOKEN, Player, pick_preset

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"
WAIT = 900.0


async def play(args: argparse.Namespace, server: PrivateTorchServe) -> dict:
    video = cs.video(round(args.seconds * args.fps), args.fps, width=854, height=480,
                     audio="aac")
    tg = FakeTelegram(TOKEN)
    await tg.start()
    env = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.api_url,
           "TS_URL": server.endpoints.inference, "TS_KEY_FILE": str(server.key_file),
           "POLLING_TIMEOUT": "10", "STATUS_INTERVAL": "3", "LOG_LEVEL": "INFO"}
    bot = BotProcess(env, args.output / "bot.log")
    bot.start()
    try:
        await tg.wait_event(lambda e: e.method == "getUpdates", 60)
        user = tg.user(7100, "Clip", "en")
        p = Player(tg, user, args.output, "clip", quiet=False)
        p.say("user", f"[video, {args.seconds:g} s, 854x480, {len(video) // 1024} KB]")
        await user.send_clip("video", video, duration=round(args.seconds), width=854,
                             height=480)
        await p.expect(lambda s: "Got the clip" in s.text, "clip received")
        pressed = await pick_preset(p, args.preset)
        status = await p.expect(lambda s: "Styling your clip" in s.text, "status message")
        sent = await user.expect(lambda s: s.method == "sendVideo", WAIT)
        p.say("bot", f"{sent.text} [video]")
        elapsed = sent.event.at - pressed
        edits = [e.params.get("text", "") for e in tg.calls("editMessageText", user.chat_id)
                 if e.params.get("message_id") == status.message_id]
        (args.output / "styled.mp4").write_bytes(sent.clip[1])
    finally:
        code = await bot.stop()
        await tg.close()
    from msgnet.animation.decode import open_clip

    info = open_clip(sent.clip[1]).info
    return {"input": {"seconds": args.seconds, "fps": args.fps, "size": "854x480"},
            "output": {"frames": info.frames, "fps": info.fps, "seconds": round(info.seconds, 2),
                       "size": f"{info.width}x{info.height}", "audio": info.audio},
            "press_to_video_s": round(elapsed, 1), "status_edits": len(edits),
            "last_progress": next((t for t in reversed(edits) if "frames done" in t), ""),
            "bot_exit": code}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--preset", default="candy")
    p.add_argument("-o", "--output", type=Path,
                   default=Path(tempfile.gettempdir()) / "demo_clip",
                   help="the bot's log, the stylized video and summary.json")
    args = p.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demo-clip-") as tmp:
        server = PrivateTorchServe(Path(tmp))
        server.build_mar(WEIGHTS, "--version", "1.0")
        clip_model.build(server.store, ["--weights", str(WEIGHTS), "--version", "1.0"])
        with server.running(timeout=300):
            print(clip_model.register(server.endpoints, server.key_file))
            started = time.perf_counter()
            summary = asyncio.run(play(args, server))
            summary["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, indent=2))
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["bot_exit"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

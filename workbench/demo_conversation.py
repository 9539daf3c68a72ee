"""Play a short conversation with the real bot, against the fake Telegram Bot API.

Telegram itself is not needed (nor reachable here): this script runs the fake Bot API server of
the tests (``fakes/telegram/``) in its own process on 127.0.0.1, starts the real,
unmodified bot (``python -m bot``) pointed at it through ``TELEGRAM_API_URL``, and plays a
user. The bot talks to a real TorchServe:

* by default the one ``scripts/serve.sh start`` runs (127.0.0.1:8080, its token-auth key in
  ``key_file.json`` at the repository root); ``--ts-url`` / ``--key-file`` name another;
* with ``--weights FILE`` the script builds a model archive from that file and starts its own
  TorchServe on free ports (stopped at the end; nothing of a running one is touched).

The conversation (a new user per run): ``/start``; ``/size`` -> 512 (``--size``); a photo;
the gallery the bot shows then -> "candy" (``--preset``) -> the result photo; then a style
photo (captioned "style") -> the result photo; in the first run also the "full-quality file"
button. Every image the bot sent is saved to ``--output`` with the bot's log and
``timings.json``, and the first run's short path as four chat screens, ``run1_screen_*.png``
(workbench/chat_screen.py).
Printed: the transcript, and per run the time from the user's last action to the result
photo arriving at the Bot API: the press of the preset button, and the upload of the style
photo (the figure the README quotes). ``--runs N`` repeats the conversation and prints the medians.

    scripts/serve.sh start && .venv/bin/python -m workbench.demo_conversation
    .venv/bin/python -m workbench.demo_conversation --weights weights/msgnet-21styles.pt --runs 5
    .venv/bin/python -m workbench.demo_conversation --content me.jpg --style picasso.jpg -o out/
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

import tsclient
from fakes.bot_process import BotProcess
from fakes.telegram import FakeTelegram, FakeUser, Sent
from tsclient.private import PrivateTorchServe
from workbench import chat_screen
from workbench.chat_screen import Bubble

ROOT = tsclient.ROOT

TOKEN = "123456789:DEMO-token-for-the-fake-api"  # the fake accepts any well-formed token
MODEL = "msgnet"
WAIT = 300.0  # seconds for any one answer of the bot (a cold TorchServe on 2 cores is slow)


# --- input pictures -------------------------------------------------------------------------

def demo_content(width: int = 640, height: int = 480) -> bytes:
    """A simple landscape (sky, sun, hills, a house): something to recognise after styling."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(90 + 120 * t), int(150 + 80 * t), 235))
    draw.ellipse([width * 0.7, height * 0.1, width * 0.85, height * 0.3], fill=(255, 215, 80))
    draw.polygon([(0, height * 0.7), (width * 0.35, height * 0.45), (width * 0.7, height * 0.72),
                  (width, height * 0.55), (width, height), (0, height)], fill=(60, 140, 70))
    draw.rectangle([width * 0.2, height * 0.55, width * 0.35, height * 0.75], fill=(200, 80, 60))
    draw.polygon([(width * 0.18, height * 0.55), (width * 0.275, height * 0.45),
                  (width * 0.37, height * 0.55)], fill=(120, 50, 40))
    return _jpeg(img)


def demo_style(size: int = 400) -> bytes:
    """Bold coloured rings and stripes: a style whose effect is easy to see."""
    img = Image.new("RGB", (size, size), (20, 20, 60))
    draw = ImageDraw.Draw(img)
    colors = [(240, 60, 50), (250, 200, 40), (40, 170, 220), (240, 240, 240), (150, 60, 200)]
    for i in range(0, size * 2, 24):
        draw.line([(i, 0), (i - size, size)], fill=colors[(i // 24) % len(colors)], width=9)
    for r in range(size // 2, 0, -30):
        draw.ellipse([size / 2 - r, size / 2 - r, size / 2 + r, size / 2 + r],
                     outline=colors[(r // 30) % len(colors)], width=8)
    return _jpeg(img)


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def image_dims(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


# --- TorchServe -----------------------------------------------------------------------------

@dataclass
class TorchServe:
    url: str
    key_file: Path | None


def check_torchserve(url: str, key_file: Path | None) -> None:
    """Fail with a hint when nothing answers at ``url`` (the bot would only say 'down')."""
    if key_file is not None and not key_file.is_file():
        print(f"demo: no key file at {key_file}: assuming token authorization is off")
        key_file = None
    try:
        tsclient.call("GET", f"{url}/ping", tsclient.read_keys(key_file).inference
                       if key_file else None, timeout=5)
    except tsclient.TorchServeError as exc:
        hint = ("check --key-file (the key is wrong or expired)"
                if isinstance(exc, tsclient.InvalidKeyError) else "start one with "
                "scripts/serve.sh start, or pass --weights FILE to let this script start its own")
        raise SystemExit(f"demo: TorchServe at {url} is not usable ({exc}): {hint}") from None


@contextmanager
def own_torchserve(weights: Path, workdir: Path, timeout: float = 300.0) -> Iterator[TorchServe]:
    """Build a .mar from ``weights`` and run TorchServe on free ports until the block ends."""
    server = PrivateTorchServe(workdir, MODEL)
    print(f"demo: building a model archive from {weights} ...")
    try:
        server.build_mar(weights)
        print(f"demo: starting TorchServe at {server.endpoints.inference} "
              f"(logs in {server.logs}) ...")
        with server.running(timeout) as seconds:
            print(f"demo: TorchServe ready in {seconds:.1f} s")
            yield TorchServe(server.endpoints.inference, server.key_file)
    except tsclient.TorchServeError as exc:
        raise SystemExit(f"demo: {exc}") from None


# --- the conversation -----------------------------------------------------------------------

@dataclass
class RunResult:
    run: int
    preset_s: float        # press of the preset's "use" button -> result photo at the Bot API
    style_upload_s: float  # style photo sent -> result photo at the Bot API
    preset_px: tuple[int, int]
    style_px: tuple[int, int]


class Player:
    """One demo user: sends, waits, prints what the bot says and keeps what it sends."""

    def __init__(self, tg: FakeTelegram, user: FakeUser, output: Path, prefix: str,
                 quiet: bool):
        self.tg, self.user, self.output, self.prefix, self.quiet = tg, user, output, prefix, quiet
        self.saved: list[Path] = []
        self.bubbles: list[Bubble] = []  # the conversation as the user sees it, for screens
        self.keyboard: list[str] = []

    def screen(self, name: str, first: int, end: int | None = None) -> Path:
        """Messages ``first`` to ``end`` (negative: from the last) as a chat screen,
        ``<prefix>_screen_<name>.png``."""
        path = chat_screen.save(self.bubbles[first:end],
                                self.output / f"{self.prefix}_screen_{name}.png",
                                self.keyboard)
        self.saved.append(path)
        return path

    def sent_photo(self, data: bytes, caption: str = "") -> None:
        self.bubbles.append(Bubble("user", caption, data))

    def say(self, who: str, text: str) -> None:
        if not self.quiet:
            print(f"  {who:>4}: {' / '.join(text.splitlines())[:110]}")

    async def expect(self, predicate, what: str) -> Sent:
        try:
            sent = await self.user.expect(predicate, WAIT)
        except AssertionError as exc:
            raise SystemExit(f"demo: the bot did not answer as expected ({what}): {exc}") from None
        self.say("bot", sent.text + (" [photo]" if sent.photo else "")
                 + (" [file]" if sent.document else ""))
        markup = (sent.message or {}).get("reply_markup") or {}
        rows = [[b.get("text", "") for b in row] for row in markup.get("inline_keyboard", [])]
        self.bubbles.append(Bubble("bot", sent.text, sent.photo, rows))
        self.keyboard = sent.reply_keyboard or self.keyboard
        return sent

    async def command(self, text: str) -> None:
        self.say("user", text)
        self.bubbles.append(Bubble("user", text))
        await self.user.send(text)

    async def press_label(self, sent: Sent, label: str) -> float:
        """Press the button whose text is ``label`` (or contains it); the time pressed."""
        exact = [d for t, d in sent.buttons if t.strip("• ") == label]
        loose = [d for t, d in sent.buttons if label in t]
        data = (exact or loose or [None])[0]
        if data is None:
            raise SystemExit(f"demo: no button {label!r} under {sent.text!r}: "
                             f"{[t for t, _ in sent.buttons]}")
        self.say("user", f"[presses {label}]")
        pressed = time.monotonic()
        await self.user.press_data(sent, data)
        return pressed

    def save(self, name: str, data: bytes) -> Path:
        path = self.output / f"{self.prefix}_{name}.jpg"
        path.write_bytes(data)
        self.saved.append(path)
        return path


async def pick_preset(p: Player, name: str) -> float:
    """In the gallery the bot shows after the photo, page to ``name``, press its use button;
    the time of that press."""
    gallery = await p.expect(lambda s: s.photo is not None, "the presets gallery")
    counted = re.search(r"\((\d+) of (\d+)\)", gallery.text)
    total = int(counted.group(2)) if counted else 100
    seen = []

    def use_data(sent: Sent) -> str | None:  # the caption shows a title, the data the name
        return next((d for _, d in sent.buttons
                     if d.startswith("pre:use:") and d.split(":")[3] == name), None)

    for _ in range(total):
        seen.append(gallery.text.split(" (")[0].removeprefix("🎨 "))
        if use_data(gallery):
            break
        since = len(p.tg.events)  # only an edit made after this press counts
        await p.press_label(gallery, "▶️")
        _, event = await p.tg.wait_event(
            lambda e, m=gallery.message_id: e.method == "editMessageMedia"
            and e.params.get("message_id") == m and isinstance(e.result, dict), 60, since)
        gallery = Sent(p.tg, gallery.chat_id, gallery.message_id, event.method, event)
        p.say("bot", f"(gallery) {gallery.text}")
    else:
        raise SystemExit(f"demo: the server has no preset {name!r}; it has {', '.join(seen)}")
    p.save(f"gallery_{name}", gallery.photo)
    p.say("user", f"[presses {name}]")
    pressed = time.monotonic()
    await p.user.press_data(gallery, use_data(gallery))
    return pressed


async def converse(tg: FakeTelegram, run: int, content: bytes, style: bytes, size: int,
                   preset: str, output: Path, quiet: bool, full_quality: bool) -> RunResult:
    user = tg.user(7000 + run, "Demo", "en")
    p = Player(tg, user, output, f"run{run}", quiet)
    await p.command("/start")
    await p.expect(lambda s: s.text.startswith("Hi,"), "greeting")
    if run == 1:
        p.screen("1_start", -2)

    await p.command("/size")
    menu = await p.expect(lambda s: bool(s.buttons) and "size" in s.text.lower(), "size menu")
    await p.press_label(menu, str(size))
    await user.expect_edit(menu.message_id, lambda s: f"{size} px" in s.text, WAIT)

    photo_at = len(p.bubbles)
    p.say("user", f"[photo, {len(content) // 1024} KB]")
    await user.send_photo(content)
    p.sent_photo(content)
    await p.expect(lambda s: "Got the photo" in s.text, "photo received")

    pressed = await pick_preset(p, preset)
    result = await p.expect(lambda s: s.method == "sendPhoto" and " px" in s.text,
                            "preset result")
    preset_s = result.event.at - pressed
    p.save(f"result_{preset}", result.photo)
    if run == 1:
        # the photo, "got it", the gallery; then the result
        p.screen("2_photo_gallery", photo_at, photo_at + 3)
        p.screen("3_result", -1)

    p.say("user", f"[style photo, caption 'style', {len(style) // 1024} KB]")
    uploaded = time.monotonic()
    await user.send_photo(style, caption="style")
    p.sent_photo(style, "style")
    styled = await p.expect(lambda s: s.method == "sendPhoto" and " px" in s.text,
                            "own-style result")
    style_s = styled.event.at - uploaded
    p.save("result_own_style", styled.photo)
    if run == 1:
        p.screen("4_own_style", -2)

    if full_quality:
        await p.press_label(styled, "Full-quality")
        document = await p.expect(lambda s: s.method == "sendDocument", "full-quality file")
        p.save("full_quality_own_style", document.document)
    return RunResult(run, round(preset_s, 3), round(style_s, 3), image_dims(result.photo),
                     image_dims(styled.photo))


async def play(args: argparse.Namespace, ts: TorchServe) -> list[RunResult]:
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    content = args.content.read_bytes() if args.content else demo_content()
    style = args.style.read_bytes() if args.style else demo_style()
    (output / "input_content.jpg").write_bytes(content)
    (output / "input_style.jpg").write_bytes(style)

    tg = FakeTelegram(TOKEN)
    await tg.start()
    env = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.api_url, "TS_URL": ts.url,
           "LOG_LEVEL": args.bot_log_level, "POLLING_TIMEOUT": "10", "TS_TIMEOUT": str(WAIT)}
    if ts.key_file is not None and ts.key_file.is_file():
        env["TS_KEY_FILE"] = str(ts.key_file)
    bot = BotProcess(env, output / "bot.log")
    print(f"demo: fake Bot API at {tg.api_url}; starting the bot (python -m bot), log in "
          f"{output / 'bot.log'}")
    bot.start()
    results: list[RunResult] = []
    try:
        try:
            await tg.wait_event(lambda e: e.method == "getUpdates", 60)
        except AssertionError:
            raise SystemExit(f"demo: the bot did not start:\n{bot.log()[-2000:]}") from None
        for run in range(1, args.runs + 1):
            print(f"--- run {run} of {args.runs}")
            results.append(await converse(tg, run, content, style, args.size, args.preset,
                                          output, args.quiet and run > 1, run == 1))
    finally:
        code = await bot.stop()
        await tg.close()
    if code != 0:
        raise SystemExit(f"demo: the bot exited with {code}; see {output / 'bot.log'}")
    return results


def report(results: list[RunResult], args: argparse.Namespace, ts: TorchServe) -> dict:
    print(f"\n{'run':>4}  {'preset ' + args.preset + ': press -> photo':>30}  "
          f"{'own style: upload -> photo':>27}  result px")
    for r in results:
        print(f"{r.run:>4}  {r.preset_s:>28.2f} s  {r.style_upload_s:>25.2f} s  "
              f"{r.style_px[0]}x{r.style_px[1]}")
    summary = {
        "size": args.size, "preset": args.preset, "runs": len(results), "torchserve": ts.url,
        "weights": str(args.weights) if args.weights else None,
        "median_preset_s": round(statistics.median(r.preset_s for r in results), 3),
        "median_style_upload_s": round(statistics.median(r.style_upload_s for r in results), 3),
        "results": [asdict(r) for r in results],
    }
    print(f"{'median':>6}{summary['median_preset_s']:>26.2f} s  "
          f"{summary['median_style_upload_s']:>25.2f} s")
    print(f"\nmedian time from the user's last upload (style photo) to the result photo at "
          f"{args.size} px: {summary['median_style_upload_s']:.2f} s over {len(results)} run(s)")
    (args.output / "timings.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"images and timings.json in {args.output}/")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ts-url", default="http://127.0.0.1:8080",
                   help="a running TorchServe's inference API (default: scripts/serve.sh's)")
    p.add_argument("--key-file", type=Path, default=ROOT / "key_file.json",
                   help="its token-auth key file (default: key_file.json in the repo root)")
    p.add_argument("--weights", type=Path, default=None,
                   help="start an own TorchServe serving these weights instead")
    p.add_argument("--content", type=Path, default=None, help="the photo (default: drawn)")
    p.add_argument("--style", type=Path, default=None, help="the style image (default: drawn)")
    p.add_argument("--preset", default="candy")
    p.add_argument("--size", type=int, default=512, help="output size chosen with /size")
    p.add_argument("--runs", type=int, default=1, help="conversations to time (median)")
    p.add_argument("-o", "--output", type=Path, default=ROOT / "runs" / "demo")
    p.add_argument("--bot-log-level", default="INFO", help="LOG_LEVEL of the bot (bot.log)")
    p.add_argument("--quiet", action="store_true", help="print the transcript of run 1 only")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    for path in (args.content, args.style, args.weights):
        if path is not None and not path.is_file():
            p.error(f"no such file: {path}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.weights is not None:
        with tempfile.TemporaryDirectory(prefix="demo-torchserve-") as workdir, \
                own_torchserve(args.weights.resolve(), Path(workdir)) as ts:
            results = asyncio.run(play(args, ts))
    else:
        ts = TorchServe(args.ts_url.rstrip("/"), args.key_file)
        check_torchserve(ts.url, ts.key_file)
        results = asyncio.run(play(args, ts))
    report(results, args, ts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stylize a folder of images through the TorchServe inference API.

    python -m scripts.batch_stylize photos/ -o out/ --preset candy --preset mosaic --size 768
    python -m scripts.batch_stylize photos/ -o out/ --style starry.jpg --concurrency 2 \
        --json run.json
    python -m scripts.batch_stylize photos/ -o out/ --preset candy:0.7,udnie:0.3 --strength 0.5 \
        --keep-colors
    python -m scripts.batch_stylize photos/ -o out/ --style starry.jpg --brush large
    python -m scripts.batch_stylize photos/ -o out/ --sheet --sheet-size 192
    python -m scripts.batch_stylize clips/ -o out/ --preset candy --clip-model msgnet_clip

The style controls are the server's (docs/serving.md): ``--strength``, ``--keep-colors``,
``--brush`` (for style images), a ``--preset`` value with several ``NAME:WEIGHT`` parts
separated by commas is one mixed style, and ``--sheet`` makes each image's contact sheet.
Every image is sent once per style (presets and style images may be mixed) with at most
``--concurrency`` requests in flight. 503 answers (queue full, worker restarting) and dropped
connections are retried with exponential backoff; 4xx answers are final. A table with each
image's status and time follows the progress bar; the exit status is 1 if anything failed.

Clips (GIF, animated WebP/APNG, MP4/WebM/MOV) in the folder are sent the same way and saved as
the server answers them (``.gif`` for an animation, ``.mp4`` for a video), at ``--clip-size``
(default: the server's clip size, 480 px) and to ``--clip-model`` when given (serve.sh
registers ``msgnet_clip``, a worker of its own, so clips do not hold up the photos).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
from tqdm import tqdm

from msgnet.animation.decode import is_clip
from tsclient import Endpoints, aiohttp_form, key_rejected, read_keys, style_form

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff",
                  ".apng", ".mp4", ".webm", ".mov", ".m4v"}
RETRY_STATUSES = {503}
CLIP_SUFFIX = {"image/gif": ".gif", "video/mp4": ".mp4"}  # by the answer's Content-Type


@dataclass(frozen=True)
class Style:
    label: str                   # used in output names and the table
    preset: str | None = None    # a name, or a mix such as "candy:0.7,udnie:0.3"
    image: Path | None = None
    sheet: bool = False          # action=sheet: the image in every preset


@dataclass
class Outcome:
    image: str
    style: str
    ok: bool
    status: int | None
    attempts: int
    seconds: float
    output: str | None = None
    error: str | None = None


def collect_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def output_path(out_dir: Path, image: Path, style: Style, fmt: str, many_styles: bool) -> Path:
    ext = "png" if fmt == "png" else "jpg"
    stem = f"{image.stem}__{style.label}" if many_styles else image.stem
    return out_dir / f"{stem}.{ext}"


class BatchClient:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        endpoints = Endpoints.from_config(args.config)
        base = (args.url or endpoints.inference).rstrip("/")
        suffix = f"/{args.version}" if args.version else ""
        self.url = f"{base}/predictions/{args.model}{suffix}"
        self.clip_url = (f"{base}/predictions/{args.clip_model}" if args.clip_model
                         else self.url)
        self.style_bytes = {s.label: s.image.read_bytes() for s in args.styles if s.image}

    def _form(self, content: bytes, name: str, style: Style, clip: bool = False
              ) -> aiohttp.FormData:
        args = self.args
        fields: dict[str, str] = {}
        if style.sheet:
            fields["action"] = "sheet"
        elif not style.preset and args.brush:
            fields["brush"] = args.brush
        if clip:  # the server's clip size unless --clip-size
            if args.clip_size:
                fields["size"] = str(args.clip_size)
        else:
            fields["size"] = str(args.sheet_size if style.sheet else args.size)
        if args.style_size and not style.sheet:
            fields["style_size"] = str(args.style_size)
        if args.strength != 1.0:
            fields["strength"] = str(args.strength)
        if args.keep_colors:
            fields["keep_colors"] = "true"
        fields["format"] = args.format
        upload = None if style.sheet or style.preset else self.style_bytes[style.label]
        parts = style_form(content, upload, None if style.sheet else style.preset or None, fields,
                           content_name=name,
                           style_name=style.image.name if upload is not None else "style")
        return aiohttp_form(parts)

    async def one(self, session: aiohttp.ClientSession, limit: asyncio.Semaphore, image: Path,
                  style: Style, target: Path) -> Outcome:
        args = self.args
        content = image.read_bytes()
        clip = not style.sheet and is_clip(content)
        url = self.clip_url if clip else self.url
        attempts, status, error = 0, None, None
        reread_key = False
        async with limit:
            started = time.perf_counter()
            while attempts <= args.retries:
                attempts += 1
                # the key file is re-read: TorchServe writes new keys on every restart
                headers = read_keys(args.key_file).headers("inference")
                try:
                    async with session.post(url, data=self._form(content, image.name, style,
                                                                 clip),
                                            headers=headers) as resp:
                        status = resp.status
                        body = await resp.read()
                        if resp.status == 200:
                            kind = resp.headers.get("Content-Type", "").split(";")[0]
                            if kind in CLIP_SUFFIX:
                                target = target.with_suffix(CLIP_SUFFIX[kind])
                            target.write_bytes(body)
                            return Outcome(image.name, style.label, True, status, attempts,
                                           time.perf_counter() - started, output=str(target))
                        error = _error_text(body)
                        if key_rejected(resp.status, _json_or_none(body)):
                            # a wrong or expired key (TorchServe 0.12: 400 InvalidKeyException):
                            # the key file may hold a renewed one; read it, send once more
                            error = (f"HTTP {resp.status}: TorchServe refused the key (wrong or "
                                     f"expired); is --key-file TorchServe's current key file, "
                                     f"and is its key renewal running (scripts/serve.sh start)?")
                            if not reread_key:
                                reread_key = True
                                attempts -= 1
                                continue
                            break
                        if resp.status not in RETRY_STATUSES:
                            break
                except (TimeoutError, aiohttp.ClientError) as exc:
                    status, error = None, f"{type(exc).__name__}: {exc}"
                if attempts <= args.retries:
                    delay = args.backoff * 2 ** (attempts - 1)
                    await asyncio.sleep(delay * (0.75 + random.random() / 2))
            return Outcome(image.name, style.label, False, status, attempts,
                           time.perf_counter() - started, error=error)

    async def run(self, jobs: list[tuple[Path, Style, Path]]) -> list[Outcome]:
        limit = asyncio.Semaphore(self.args.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.args.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            tasks = [asyncio.create_task(self.one(session, limit, img, style, target))
                     for img, style, target in jobs]
            outcomes = []
            with tqdm(total=len(tasks), unit="img", disable=self.args.quiet) as bar:
                for done in asyncio.as_completed(tasks):
                    outcome = await done
                    outcomes.append(outcome)
                    bar.update(1)
                    if not outcome.ok:
                        bar.write(f"failed: {outcome.image} [{outcome.style}]: {outcome.error}")
        order = {(img.name, style.label): i for i, (img, style, _) in enumerate(jobs)}
        return sorted(outcomes, key=lambda o: order[(o.image, o.style)])


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            return f"{data.get('code', data.get('type', 'error'))}: {data.get('message', data)}"
    except ValueError:
        pass
    return body[:200].decode("utf-8", "replace")


def summary_table(outcomes: list[Outcome]) -> str:
    rows = [("image", "style", "result", "http", "tries", "ms", "output / error")]
    for o in outcomes:
        rows.append((o.image, o.style, "ok" if o.ok else "FAILED", str(o.status or "-"),
                     str(o.attempts), f"{o.seconds * 1000:.0f}",
                     (o.output if o.ok else o.error) or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
             for r in rows]
    ok = sum(o.ok for o in outcomes)
    times = sorted(o.seconds for o in outcomes if o.ok)
    lines.append(f"{ok}/{len(outcomes)} succeeded"
                 + (f"; median {times[len(times) // 2] * 1000:.0f} ms" if times else ""))
    return "\n".join(lines)


def _mix_label(spec: str) -> str:
    """A file-name label for a preset or a mix: ``candy:0.7,udnie:0.3`` -> ``candy0.7+udnie0.3``."""
    return "+".join(part.strip().replace(":", "") for part in spec.split(",") if part.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input_dir", type=Path)
    p.add_argument("-o", "--output-dir", type=Path, required=True)
    p.add_argument("--preset", action="append", default=[],
                   help="preset name, or a mix NAME:W,NAME:W (repeatable: one output each)")
    p.add_argument("--style", action="append", default=[], type=Path,
                   help="style image (repeatable)")
    p.add_argument("--sheet", action="store_true",
                   help="also make each image's contact sheet (every preset, labelled)")
    p.add_argument("--size", type=int, default=512, help="longest side of the outputs")
    p.add_argument("--sheet-size", type=int, default=256,
                   help="cell size of --sheet (64 to 512, default 256)")
    p.add_argument("--style-size", type=int, default=None)
    p.add_argument("--strength", type=float, default=1.0, help="0 (the photo) .. 1 (default)")
    p.add_argument("--keep-colors", action="store_true", help="keep the photos' colours")
    p.add_argument("--brush", choices=["small", "medium", "large"], default=None,
                   help="stroke size for --style images")
    p.add_argument("--format", choices=["jpeg", "png"], default="jpeg")
    p.add_argument("--clip-size", type=int, default=None,
                   help="longest side of clip outputs (default: the server's, 480)")
    p.add_argument("--clip-model", default=None,
                   help="model name clips go to (default --model; serve.sh registers "
                        "msgnet_clip)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--retries", type=int, default=4, help="extra attempts after a 503")
    p.add_argument("--backoff", type=float, default=0.5, help="first retry delay, seconds")
    p.add_argument("--timeout", type=float, default=600.0, help="per request, seconds")
    p.add_argument("--model", default="msgnet")
    p.add_argument("--version", default=None, help="model version (default: the default one)")
    p.add_argument("--url", default=None, help="inference base URL (default: config.properties)")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--key-file", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if not args.preset and not args.style and not args.sheet:
        p.error("give at least one --preset, --style or --sheet")
    if not 0.0 <= args.strength <= 1.0:
        p.error(f"--strength must be from 0 to 1, got {args.strength}")
    if args.brush and args.style_size:
        p.error("--brush sets the style size: use --brush or --style-size, not both")
    if args.brush and not args.style:
        p.error("--brush applies to --style images (a preset is stored as one target)")
    if not 64 <= args.sheet_size <= 512:
        p.error(f"--sheet-size must be from 64 to 512, got {args.sheet_size}")
    if args.concurrency < 1 or args.retries < 0:
        p.error("--concurrency must be >= 1 and --retries >= 0")
    missing = [s for s in args.style if not s.is_file()]
    if missing:
        p.error(f"style image not found: {missing[0]}")
    if not args.input_dir.is_dir():
        p.error(f"not a folder: {args.input_dir}")
    args.styles = ([Style(label=_mix_label(name), preset=name) for name in args.preset]
                   + [Style(label=path.stem, image=path) for path in args.style]
                   + ([Style(label="sheet", sheet=True)] if args.sheet else []))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    images = collect_images(args.input_dir)
    if not images:
        print(f"no images in {args.input_dir}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    many = len(args.styles) > 1
    jobs = [(img, style, output_path(args.output_dir, img, style, args.format, many))
            for img in images for style in args.styles]
    client = BatchClient(args)
    started = time.perf_counter()
    outcomes = asyncio.run(client.run(jobs))
    wall = time.perf_counter() - started
    print(summary_table(outcomes))
    print(f"wall time {wall:.1f} s, concurrency {args.concurrency}")
    if args.json:
        args.json.write_text(json.dumps({"url": client.url, "wall_seconds": round(wall, 3),
                                         "results": [asdict(o) for o in outcomes]}, indent=2))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

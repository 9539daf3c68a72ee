"""Tiny generated clips for tests, benchmarks and docs: a textured scene that pans, with a
little sensor noise, as GIF / animated WebP / APNG (Pillow) or MP4 / WebM (PyAV), with an
optional audio tone. Deterministic for a seed; nothing is downloaded.

    .venv/bin/python -m fakes.clips -o clip.mp4 --seconds 10 --size 480x270
"""

from __future__ import annotations

import argparse
import io
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A wide landscape-like texture (sky gradient, hills, blobs) to pan over, (h, 2w, 3)."""
    rng = np.random.default_rng(seed)
    w2 = 2 * width
    yy, xx = np.mgrid[0:height, 0:w2].astype(np.float32)
    sky = np.stack([90 + 100 * yy / height, 140 + 60 * yy / height,
                    230 - 80 * yy / height], axis=-1)
    hills = height * (0.55 + 0.12 * np.sin(xx / w2 * 9.0) + 0.05 * np.sin(xx / w2 * 31.0))
    ground = (yy > hills)[..., None]
    grass = np.stack([60 + 40 * np.sin(xx / 7.0), 130 + 50 * np.cos(yy / 5.0),
                      50 + 0 * xx], axis=-1)
    img = np.where(ground, grass, sky)
    for _ in range(12):  # blobs: houses, trees
        cx, cy = rng.uniform(0, w2), rng.uniform(0.4 * height, height)
        r = rng.uniform(0.04, 0.12) * height
        colour = rng.uniform(20, 235, size=3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
        img[mask] = colour
    return img.astype(np.float32)


def frames(n: int, width: int = 64, height: int = 48, seed: int = 0,
           noise: float = 2.0, pan: float = 0.0, ball: float = 0.35) -> list[np.ndarray]:
    """``n`` RGB uint8 frames of :func:`scene`, panning ``pan`` px a frame, with a dark ball
    of radius ``ball`` x height crossing it once (a big moving object is what moves a frame's
    instance-norm statistics, and so what per-frame statistics turn into flicker), plus noise.
    """
    base = scene(width, height, seed)
    rng = np.random.default_rng(seed + 1)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for k in range(n):
        x0 = int(round(k * pan)) % width
        frame = base[:, x0:x0 + width].copy()
        if ball > 0:
            r = ball * height
            cx = -r + (width + 2 * r) * (k + 0.5) / max(n, 1)
            inside = (xx - cx) ** 2 + (yy - height * 0.5) ** 2 < r * r
            frame[inside] = (25.0, 20.0, 30.0)
        frame += rng.normal(0, noise, size=(height, width, 3))
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def animation(fmt: str = "GIF", n: int = 6, width: int = 64, height: int = 48,
              durations: list[int] | int = 100, loop: int = 0, seed: int = 0) -> bytes:
    """An animated GIF / WEBP / PNG (APNG) of ``n`` frames."""
    images = [Image.fromarray(f) for f in frames(n, width, height, seed)]
    buf = io.BytesIO()
    images[0].save(buf, format=fmt, save_all=True, append_images=images[1:],
                   duration=durations, loop=loop, **({"lossless": True} if fmt == "WEBP"
                                                     else {}))
    return buf.getvalue()


def video(n: int = 10, fps: float = 10, width: int = 64, height: int = 48,
          container: str = "mp4", codec: str = "libx264", audio: str | None = None,
          seed: int = 0, rotation: int = 0, times: list[float] | None = None,
          left_band: bool = False) -> bytes:
    """A video of ``n`` frames at ``fps``; ``audio`` (e.g. ``"aac"``, ``"libopus"``) adds a
    440 Hz tone as long as the video. ``rotation`` (degrees counter-clockwise) is written as
    the display matrix a phone writes for a portrait clip; ``times`` (seconds, one per frame)
    makes a variable-frame-rate clip, as phones record in low light; ``left_band`` paints the
    stored frames' left eighth white, to tell which way a frame was turned."""
    import av

    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=container)
    rate = Fraction(fps).limit_denominator(1001)
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    if rotation:
        stream.set_display_rotation(rotation)
    time_base = 1 / rate if times is None else Fraction(1, 1000)
    if times is not None:
        stream.codec_context.time_base = time_base
    a = None
    if audio:
        sample_rate = 48000 if "opus" in audio else 16000
        a = out.add_stream(audio, rate=sample_rate)
        a.layout = "mono"
    for k, arr in enumerate(frames(n, width, height, seed)):
        if left_band:
            arr[:, : max(1, width // 8)] = 255
        frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
        frame.pts = k if times is None else round(times[k] * 1000)
        frame.time_base = time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    if a is not None:
        total = int(n / fps * sample_rate)
        tone = (0.2 * np.sin(np.arange(total) / sample_rate * 2 * np.pi * 440)).astype(
            np.float32)[None]
        step = a.codec_context.frame_size or 1024
        for start in range(0, total, step):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + step]),
                                            format="flt", layout="mono")
            af.sample_rate = sample_rate
            af.pts = start
            for packet in a.encode(af):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)
    out.close()
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, required=True,
                   help=".gif/.webp/.png animation or .mp4/.webm video")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--size", default="160x120", help="WxH")
    p.add_argument("--audio", action="store_true", help="add a tone (mp4: AAC)")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    n = max(1, round(args.seconds * args.fps))
    ext = args.output.suffix.lower()
    if ext in (".gif", ".webp", ".png"):
        fmt = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG"}[ext]
        data = animation(fmt, n, w, h, durations=round(1000 / args.fps))
    else:
        container = "webm" if ext == ".webm" else "mp4"
        codec = "libvpx-vp9" if container == "webm" else "libx264"
        audio = ("libopus" if container == "webm" else "aac") if args.audio else None
        data = video(n, args.fps, w, h, container, codec, audio)
    args.output.write_bytes(data)
    print(f"{args.output}: {n} frames, {w}x{h}, {len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

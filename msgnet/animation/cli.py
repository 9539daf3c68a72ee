"""The clip side of ``python -m msgnet stylize``: a GIF or video in, a .gif or .mp4 out, with a
progress bar over the frames. Kept out of :mod:`msgnet.cli` so that photo runs never import
PyAV."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from msgnet.animation.limits import ClipLimits
from msgnet.animation.stats import REFERENCES
from msgnet.inference.controls import Controls

CLIP_SUFFIXES = {".gif": "gif", ".mp4": "mp4"}
_DEFAULTS = ClipLimits()


class ClipCliError(Exception):
    """A clip option the command line cannot use (printed as one line, exit 2)."""


def add_clip_arguments(s: argparse.ArgumentParser) -> None:
    """The options that only apply when CONTENT is a clip."""
    g = s.add_argument_group("clips (CONTENT is a GIF, animated WebP/APNG or a video)")
    g.add_argument("--reference", choices=REFERENCES, default="first",
                   help="instance-norm statistics every frame uses: the first frame's "
                        "(default, least flicker), a running mean, or each frame's own")
    g.add_argument("--max-seconds", type=float, default=_DEFAULTS.max_seconds,
                   help=f"longest clip accepted (default {_DEFAULTS.max_seconds:g} s)")
    g.add_argument("--max-frames", type=int, default=_DEFAULTS.max_frames,
                   help=f"most frames accepted (default {_DEFAULTS.max_frames})")
    g.add_argument("--fps", type=float, default=_DEFAULTS.max_fps,
                   help=f"frame-rate cap for videos: faster ones drop frames "
                        f"(default {_DEFAULTS.max_fps:g})")


def is_clip_file(path: Path) -> bool:
    """Whether ``path`` holds an animation or a video (its header only)."""
    from msgnet.animation.decode import animated_format, video_like

    if not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(4096)
    if video_like(head):
        return True
    if not head.startswith((b"GIF8", b"RIFF", b"\x89PNG")):
        return False
    return animated_format(path.read_bytes()) is not None


def _limits(args: argparse.Namespace, size: int) -> ClipLimits:
    try:
        return ClipLimits(max_seconds=args.max_seconds, max_frames=args.max_frames,
                          max_fps=args.fps, size=size,
                          max_size=max(size, _DEFAULTS.max_size, args.max_size))
    except ValueError as exc:
        raise ClipCliError(str(exc)) from exc


def stylize_clip_file(args: argparse.Namespace, stylizer, target: torch.Tensor,
                      controls: Controls, started: float) -> int:
    """Stylize the clip ``args.content`` into ``args.output``; prints what it wrote."""
    from tqdm import tqdm

    from msgnet.animation.stylize import stylize_clip
    from msgnet.imageio import ImageTooLargeError

    fmt = CLIP_SUFFIXES.get(args.output.suffix.lower())
    if fmt is None:
        raise ClipCliError(f"{args.content} is a clip: write it to a .gif or an .mp4, not "
                           f"{args.output.name}")
    size = args.size or _DEFAULTS.size
    limits = _limits(args, size)
    nbytes = args.content.stat().st_size
    if nbytes > limits.max_bytes:
        raise ImageTooLargeError(f"{args.content.name} is {nbytes / 2**20:.1f} MB; the clip "
                                 f"limit is {limits.max_bytes / 2**20:.0f} MB")
    bars: list[tqdm] = []  # opened at the first chunk, once the limits have passed

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="frame", desc="stylizing", leave=False))
        bars[0].total = total
        bars[0].update(done - bars[0].n)
        bars[0].refresh()  # chunks are seconds apart: show each

    try:
        result = stylize_clip(args.content.read_bytes(), stylizer, target, size=size,
                              controls=controls, reference=args.reference, limits=limits,
                              out_format=fmt, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(result.body)
    elapsed = time.perf_counter() - started
    audio = f", audio {result.audio}" if fmt == "mp4" else ""
    print(f"{args.output} ({result.width}x{result.height} {fmt}, {result.frames} frames, "
          f"{result.seconds:.2f} s at {result.fps:.3g} fps{audio}; {elapsed:.2f} s, "
          f"{result.elapsed_s / result.frames * 1000:.0f} ms a frame)")
    return 0

"""Stylize an animated upload end to end: decode, stylize in chunks, encode; bounded memory.

:func:`stylize_clip` streams: frames are decoded one at a time, stylized ``chunk`` at a time
with one set of instance-norm statistics (:mod:`msgnet.animation.stats`, against flicker) and handed
to the encoder, so what is held is the upload, one chunk of frames and the encoded output.
An animation (GIF, animated WebP, APNG) comes back as a GIF with its per-frame durations and
loop count; a video as an H.264 MP4 at its frame rate (capped) with its audio track copied.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from msgnet.animation.decode import ANIMATION, ClipInfo, Frame, open_clip
from msgnet.animation.encode import GifEncoder, Mp4Encoder
from msgnet.animation.flicker import FlickerMeter
from msgnet.animation.limits import ClipError, ClipLimits
from msgnet.animation.stats import ReferenceStats
from msgnet.imageio import bgr_to_image
from msgnet.inference.controls import (
    DEFAULT_CONTROLS,
    Controls,
    apply_pixel_controls,
    interpolate_target,
)
from msgnet.inference.stylize import Stylizer, pad_to_multiple

DEFAULT_REFERENCE = "first"  # measured in docs/animation.md: lower flicker than "running"
DEFAULT_CHUNK = 8
OUTPUT_FORMATS = ("gif", "mp4")

Progress = Callable[[int, int], None]


class ClipCancelled(ClipError):
    """The caller asked to stop between two chunks."""

    code = "cancelled"
    http_status = 409


@dataclass(frozen=True)
class ClipResult:
    """The encoded clip and what it is."""

    body: bytes
    content_type: str
    info: ClipInfo           # the input's header
    frames: int
    width: int
    height: int
    fps: float               # output frames per second (mean, for a GIF)
    seconds: float           # output duration
    audio: str               # "none", "kept (aac)", "dropped (...)"
    elapsed_s: float
    flicker: FlickerMeter | None = None


def output_format(info: ClipInfo, requested: str | None = None) -> str:
    """GIF for an animation, MP4 for a video, unless the caller asks for one of them."""
    if requested is not None:
        if requested not in OUTPUT_FORMATS:
            raise ValueError(f"clip output format must be one of {', '.join(OUTPUT_FORMATS)}, "
                             f"got {requested!r}")
        return requested
    return "gif" if info.kind == ANIMATION else "mp4"


class FrameStylizer:
    """Stylizes the frames of one clip with one target and one statistics reference."""

    def __init__(self, stylizer: Stylizer, target: torch.Tensor, size: int,
                 controls: Controls = DEFAULT_CONTROLS, reference: str = DEFAULT_REFERENCE):
        self.stylizer = stylizer
        self.size = size
        self.controls = controls
        self.stats = ReferenceStats(reference)
        self.runner = stylizer.tiled.runner if stylizer.tiled is not None else None
        self.target = target
        self._gram: torch.Tensor | None = None

    def _target_for(self, first: torch.Tensor) -> torch.Tensor:
        """The pass's Gram target; the "gram" strength method needs the first frame's."""
        if self._gram is None:
            gram = self.stylizer._as_target(self.target)
            if self.controls.needs_content_target:
                gram = interpolate_target(self.stylizer.content_target(first), gram,
                                          self.controls.strength)
            self._gram = gram
        return self._gram

    def prepare(self, frame: Frame) -> torch.Tensor:
        return self.stylizer.prepare_content(frame.image, self.size)

    def run(self, contents: list[torch.Tensor]) -> list[torch.Tensor]:
        """(1, 3, h, w) BGR frames in, stylized frames out, in order."""
        gram = self._target_for(contents[0])
        if self.runner is None or self.stats.mode == "off":
            plain = Controls(strength=1.0) if self.controls.needs_content_target \
                else self.controls
            return self.stylizer.run(contents, [gram] * len(contents),
                                     [plain] * len(contents))
        outs = []
        saved = self.runner.stats_fn
        self.runner.stats_fn = self.stats
        try:
            with torch.inference_mode():
                for x in contents:
                    h, w = x.shape[-2:]
                    self.stats.start_frame()
                    y = self.runner.stylize_one(pad_to_multiple(x.float()), gram)
                    self.stats.end_frame()
                    y = y[..., :h, :w].clamp_(0, 255)
                    if self.controls.touches_pixels:
                        y = apply_pixel_controls(y, x, self.controls)
                    outs.append(y)
        finally:
            self.runner.stats_fn = saved
        return outs


def _chunks(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    chunk: list[Frame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stylize_clip(data: bytes, stylizer: Stylizer, target: torch.Tensor, *,
                 size: int | None = None, controls: Controls = DEFAULT_CONTROLS,
                 reference: str = DEFAULT_REFERENCE, limits: ClipLimits | None = None,
                 out_format: str | None = None, chunk: int = DEFAULT_CHUNK,
                 progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 measure_flicker: bool = False) -> ClipResult:
    """Stylize every frame of ``data`` with ``target`` and encode the result.

    ``progress(done, total)`` is called after each chunk (``total`` from the header);
    ``should_stop()`` is asked before each chunk and raises :class:`ClipCancelled` when true.
    """
    started = time.perf_counter()
    limits = limits or ClipLimits()
    size = limits.size if size is None else size
    if not 16 <= size <= limits.max_size:
        raise ValueError(f"size must be between 16 and {limits.max_size} pixels for a clip "
                         f"(longest side), got {size}")
    source = open_clip(data, limits)
    info = source.info
    fmt = output_format(info, out_format)
    frames_fn = FrameStylizer(stylizer, target, size, controls, reference)
    meter = FlickerMeter() if measure_flicker else None
    video_audio = None
    if fmt == "mp4":
        demux = getattr(source, "open_container", None)
        audio_container = demux() if (demux and info.audio) else None
        if audio_container is not None:
            video_audio = audio_container
        encoder: GifEncoder | Mp4Encoder = Mp4Encoder(
            info.fps or 10.0,
            audio_from=audio_container.streams.audio[0] if audio_container else None)
    else:
        encoder = GifEncoder(loop=info.loop)
    done, width, height, shown_ms = 0, 0, 0, 0.0
    try:
        for group in _chunks(source.frames(), max(1, chunk)):
            if should_stop is not None and should_stop():
                raise ClipCancelled(f"Stopped after {done} of {info.frames} frames.")
            contents = [frames_fn.prepare(f) for f in group]
            outs = frames_fn.run(contents)
            for frame, x, y in zip(group, contents, outs, strict=True):
                if meter is not None:
                    meter.add(x, y)
                image = bgr_to_image(y)
                width, height = image.size
                encoder.add(image, frame.duration_ms)
                shown_ms += frame.duration_ms
            done += len(group)
            if progress is not None:
                progress(done, max(done, info.frames))
        if isinstance(encoder, Mp4Encoder):
            if video_audio is not None:
                for packet in video_audio.demux(video_audio.streams.audio[0]):
                    encoder.mux_audio(packet)
            width, height = encoder.video.width, encoder.video.height
        body = encoder.finish()
    finally:
        if video_audio is not None:
            video_audio.close()
        if isinstance(encoder, Mp4Encoder):
            encoder.close()
    if not done:
        raise ClipError("The clip has no frames.")
    seconds = shown_ms / 1000.0
    return ClipResult(body=body, content_type=encoder.content_type, info=info, frames=done,
                      width=width, height=height, fps=done / seconds if seconds else 0.0,
                      seconds=seconds,
                      audio=encoder.audio_note if isinstance(encoder, Mp4Encoder) else "none",
                      elapsed_s=time.perf_counter() - started, flicker=meter)

"""Limits for animated inputs (GIF, animated WebP/APNG, MP4/WebM/MOV) and their errors.

A clip costs one forward pass per frame, so the limits that bound a request are its duration,
its frame count, the frame rate frames are sampled at and the output size; the byte cap bounds
what is held before decoding. They are checked from the container's header before any frame is
decoded, and again while decoding (a header can lie). Clients read them from
:meth:`ClipLimits.describe` (the server's presets answer, the bot's "limits" line), so that a
user learns them before the work starts.

The errors subclass :class:`msgnet.imageio.ImageError`, so they carry ``code`` and
``http_status`` the server answers with, like the image errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from msgnet.imageio import DEFAULT_MAX_BYTES, ImageError

SEND_CLIP_HINT = "Send a GIF, or an MP4/WebM/MOV video (H.264, VP8/VP9, HEVC or AV1)."


class ClipError(ImageError):
    """An animated upload that cannot be stylized as it is."""

    code = "bad_clip"
    http_status = 400


class CorruptClipError(ClipError):
    """A clip whose container or frames cannot be decoded (truncated, damaged)."""

    code = "corrupt_clip"
    http_status = 400


class UnsupportedCodecError(ClipError):
    """A container we read holding a codec we cannot decode, or no video at all."""

    code = "unsupported_codec"
    http_status = 415


class ClipTooLongError(ClipError):
    """Over the duration, frame-count or frame-size limit."""

    code = "clip_too_long"
    http_status = 413


@dataclass(frozen=True)
class ClipLimits:
    """What one clip may be. ``size`` is the default output longest side, ``max_size`` the
    largest a request may ask for; frames above ``max_fps`` are dropped, not refused."""

    max_seconds: float = 15.0
    max_frames: int = 300
    # 15 fps keeps a 10 s 480 px clip near 1.5 min on 2 shared cores (docs/animation.md)
    max_fps: float = 15.0
    size: int = 480
    max_size: int = 720
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = 3840 * 2160  # per input frame (4K), checked from the header

    def __post_init__(self) -> None:
        for name in ("max_seconds", "max_frames", "max_fps", "size", "max_size", "max_bytes",
                     "max_pixels"):
            if not getattr(self, name) > 0:
                raise ValueError(f"clip limit {name} must be positive, got {getattr(self, name)}")
        if self.size > self.max_size:
            raise ValueError(f"clip size {self.size} is above clip max_size {self.max_size}")

    def describe(self) -> dict:
        """The limits as JSON-ready numbers (the server reports them to clients)."""
        return asdict(self)

    def summary(self) -> str:
        """One line a person reads before sending a clip."""
        return (f"up to {self.max_seconds:g} s and {self.max_frames} frames, sampled at up to "
                f"{self.max_fps:g} fps, {self.max_bytes / (1024 * 1024):.0f} MB; the result is "
                f"{self.size} px on its longest side")

    def check(self, *, seconds: float, frames: int, width: int, height: int) -> None:
        """Refuse a clip over a limit, with the numbers in the message."""
        if width * height > self.max_pixels:
            raise ClipTooLongError(f"The clip's frames are {width}x{height} pixels; the limit is "
                                   f"{self.max_pixels / 1e6:.1f} megapixels a frame.")
        if seconds > self.max_seconds + 1e-3:
            raise ClipTooLongError(f"The clip is {seconds:.1f} s long; the limit is "
                                   f"{self.max_seconds:g} s. Send a shorter clip.")
        if frames > self.max_frames:
            raise ClipTooLongError(f"The clip has {frames} frames (at up to {self.max_fps:g} "
                                   f"fps); the limit is {self.max_frames}. Send a shorter clip.")

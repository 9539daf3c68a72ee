"""Streaming decode of animated uploads: GIF / animated WebP / APNG (Pillow), MP4 / WebM / MOV
(PyAV, whose wheel ships FFmpeg's libraries; there is no system ffmpeg to call).

PyAV over imageio-ffmpeg: PyAV decodes in process, frame by frame, with each frame's
timestamp, tells a corrupt container from an unknown codec by exception type, and can copy the
audio stream's packets into the output unchanged. imageio-ffmpeg pipes raw frames from an
``ffmpeg`` executable it ships (68 MB wheel against 36 MB), reads metadata by parsing that
program's log, and would need a second process to carry the audio over.

:func:`open_clip` reads the header only and checks :class:`msgnet.animation.limits.ClipLimits`
before any frame is decoded; :meth:`ClipSource.frames` then yields one RGB frame at a time
(never the whole clip), dropping frames above the fps cap and re-checking the limits, since a
header can lie.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

from PIL import Image

from msgnet.animation.limits import (
    SEND_CLIP_HINT,
    ClipLimits,
    ClipTooLongError,
    CorruptClipError,
    UnsupportedCodecError,
)
from msgnet.imageio import ImageTooLargeError, to_rgb

ANIMATION, VIDEO = "animation", "video"
# ISO-BMFF brands of still images (HEIC, AVIF): ``ftyp`` alone does not make a video
_IMAGE_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"heif",
                 b"avif", b"avis")
MIN_FRAME_MS = 20  # browsers show GIF delays under 20 ms as 100 ms; we read them as 20


@dataclass(frozen=True)
class Frame:
    """One decoded frame and how long it is shown."""

    image: Image.Image
    duration_ms: float


@dataclass(frozen=True)
class ClipInfo:
    """What the header says (``frames`` after the fps cap; ``fps`` is the output rate)."""

    kind: str            # ANIMATION (GIF, WebP, APNG) or VIDEO
    container: str       # "GIF", "WEBP", "PNG", "mp4", "webm", ...
    codec: str           # the video codec ("gif", "h264", ...)
    width: int
    height: int
    frames: int
    fps: float
    seconds: float
    loop: int = 0        # GIF loop count (0 = forever)
    audio: str | None = None  # the audio codec, if the clip has sound
    durations_ms: tuple[float, ...] = field(default=(), repr=False)  # animations only


def video_like(data: bytes) -> bool:
    """Whether the bytes start like an MP4/MOV (ftyp, not a still-image brand) or a
    WebM/Matroska (EBML) file."""
    head = bytes(data[:16])
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    return head.startswith(b"\x1aE\xdf\xa3")


def animated_format(data: bytes) -> str | None:
    """``"GIF"``, ``"WEBP"`` or ``"PNG"`` (APNG) when the bytes are an image with more than one
    frame, else None (header parsing only)."""
    head = bytes(data[:16])
    if not (head.startswith((b"GIF87a", b"GIF89a", b"\x89PNG"))
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return img.format if getattr(img, "is_animated", False) else None
    except Exception:  # a broken still image is the image decoder's business
        return None


def is_clip(data: bytes) -> bool:
    """Whether the upload goes down the animated path (an animation or a video)."""
    return video_like(data) or animated_format(data) is not None


def open_clip(data: bytes, limits: ClipLimits | None = None) -> ClipSource:
    """Read the header of an animated upload and check it against ``limits``."""
    limits = limits or ClipLimits()
    if len(data) > limits.max_bytes:
        mb = 1024 * 1024
        raise ImageTooLargeError(f"The clip is {len(data) / mb:.1f} MB; the limit is "
                                 f"{limits.max_bytes / mb:.1f} MB. Send a shorter clip.")
    source: ClipSource
    if animated_format(data) is not None:
        source = _AnimationSource(data, limits)
    elif video_like(data):
        source = _VideoSource(data, limits)
    else:
        raise UnsupportedCodecError(f"The file is not an animation or a video. {SEND_CLIP_HINT}")
    info = source.info
    limits.check(seconds=info.seconds, frames=info.frames, width=info.width, height=info.height)
    return source


class ClipSource:
    """A clip ready to decode: :attr:`info` from the header, :meth:`frames` streams."""

    info: ClipInfo

    def __init__(self, data: bytes, limits: ClipLimits):
        self.data = data
        self.limits = limits

    def frames(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _count(self, n: int, seconds: float) -> None:
        """Re-check while decoding: a header can understate the frames or the duration."""
        if n > self.limits.max_frames or seconds > self.limits.max_seconds + 0.5:
            raise ClipTooLongError(f"The clip is longer than its header says (over "
                                   f"{self.limits.max_frames} frames or "
                                   f"{self.limits.max_seconds:g} s). Send a shorter clip.")


# ---------------------------------------------------------------------------- Pillow
class _AnimationSource(ClipSource):
    """GIF, animated WebP, APNG: every frame is kept (their timing is per frame)."""

    def __init__(self, data: bytes, limits: ClipLimits):
        super().__init__(data, limits)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as img:
                    fmt, (w, h) = img.format, img.size
                    loop = int(img.info.get("loop", 0) or 0)
                    if w * h > limits.max_pixels:  # before seeking through every frame
                        limits.check(seconds=0, frames=0, width=w, height=h)
                    count = img.n_frames
                    if count > limits.max_frames:  # before reading every frame's timing
                        limits.check(seconds=0, frames=count, width=w, height=h)
                    durations = []
                    for index in range(count):
                        img.seek(index)
                        if "duration" not in img.info:  # WebP sets it when a frame loads
                            img.load()
                        durations.append(_frame_ms(img.info.get("duration")))
        except (ClipTooLongError, MemoryError):
            raise
        except Exception as exc:
            raise CorruptClipError(f"The {fmt_name(data)} is damaged or incomplete. "
                                   "Send the complete file again.") from exc
        seconds = sum(durations) / 1000.0
        self.info = ClipInfo(kind=ANIMATION, container=fmt, codec=fmt.lower(), width=w,
                             height=h, frames=len(durations),
                             fps=len(durations) / seconds if seconds else 0.0,
                             seconds=seconds, loop=loop, durations_ms=tuple(durations))

    def frames(self) -> Iterator[Frame]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(self.data)) as img:
                    for index, duration in enumerate(self.info.durations_ms):
                        img.seek(index)
                        img.load()
                        yield Frame(to_rgb(img.copy()), duration)
        except (ClipTooLongError, GeneratorExit):
            raise
        except Exception as exc:
            raise CorruptClipError(f"The {fmt_name(self.data)} is damaged or incomplete "
                                   "after its first frames. Send the complete file "
                                   "again.") from exc


def _frame_ms(duration: object) -> float:
    try:
        value = float(duration)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 100.0
    return max(float(MIN_FRAME_MS), value) if math.isfinite(value) else 100.0


def fmt_name(data: bytes) -> str:
    """A person's name for the kind of file (for messages)."""
    head = bytes(data[:16])
    if head.startswith(b"GIF"):
        return "GIF"
    if head[:4] == b"RIFF":
        return "WebP animation"
    if head.startswith(b"\x89PNG"):
        return "PNG animation"
    return "video"


# ---------------------------------------------------------------------------- PyAV
class _VideoSource(ClipSource):
    """MP4 / MOV / WebM through PyAV; frames above ``max_fps`` are dropped evenly, and frames
    are turned upright by the clip's display rotation."""

    def __init__(self, data: bytes, limits: ClipLimits):
        super().__init__(data, limits)
        import av  # imported here: photos never pay for FFmpeg's libraries

        self._av = av
        container = self._open()
        try:
            if not container.streams.video:
                raise UnsupportedCodecError("The file has no video track. " + SEND_CLIP_HINT)
            stream = container.streams.video[0]
            codec = stream.codec_context.name if stream.codec_context else "unknown"
            try:
                av.codec.Codec(codec, "r")
            except Exception as exc:
                raise UnsupportedCodecError(f"The video codec {codec!r} is not supported. "
                                            + SEND_CLIP_HINT) from exc
            w, h = int(stream.codec_context.width), int(stream.codec_context.height)
            if w < 1 or h < 1:
                raise CorruptClipError("The video's header gives no frame size. "
                                       "Send the complete file again.")
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            in_fps = float(rate)
            if stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / 1e6
            else:
                seconds = (stream.frames or 0) / in_fps if in_fps else 0.0
            self.in_fps = in_fps
            self.out_fps = min(in_fps, limits.max_fps) if in_fps > 0 else limits.max_fps
            frames = round(seconds * self.out_fps) or int(stream.frames or 0)
            audio = container.streams.audio[0].codec_context.name if container.streams.audio \
                else None
            self.rotation = _first_rotation(container, stream)
            if round(self.rotation / 90.0) % 2:  # a quarter turn: the clip is seen portrait
                w, h = h, w
        finally:
            container.close()
        self.info = ClipInfo(kind=VIDEO, container=_container_name(data), codec=codec,
                             width=w, height=h, frames=frames, fps=self.out_fps,
                             seconds=seconds, audio=audio)

    def _open(self):
        av = self._av
        try:
            return av.open(io.BytesIO(self.data), mode="r")
        except av.error.InvalidDataError as exc:
            raise CorruptClipError("The video is damaged or incomplete (its index could not "
                                   "be read). Send the complete file again.") from exc
        except av.error.FFmpegError as exc:
            raise UnsupportedCodecError("The video could not be opened. "
                                        + SEND_CLIP_HINT) from exc

    def open_container(self):
        """A fresh demuxer over the bytes (the encoder copies the audio packets from it)."""
        return self._open()

    def frames(self, container=None) -> Iterator[Frame]:
        """Decoded frames, upright, at most :attr:`out_fps` of them a second, each shown until
        the next kept one (the input's own timestamps, so a variable-frame-rate clip keeps
        its timing and its sound stays in sync); ``container`` when the caller demuxes."""
        own = container is None
        container = container or self._open()
        # drop only frames closer than the cap allows: a variable-rate clip's mean rate is
        # below its fast stretches, so capping at the mean would drop real frames
        step = 1.0 / max(self.limits.max_fps, self.out_fps)
        kept, next_t, first_t = 0, 0.0, None
        pending: tuple[Image.Image, float] | None = None  # shown until the next kept frame
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else kept / self.out_fps
                first_t = t if first_t is None else first_t
                t -= first_t
                if t < next_t - step / 4:  # above the fps cap: drop it (1/4 step for jitter)
                    continue
                kept += 1
                # the next slot on the grid, but never behind a frame that came late
                next_t = max(next_t + step, t + step / 2)
                self._count(kept, t)
                if pending is not None:
                    yield Frame(pending[0], max(1.0, (t - pending[1]) * 1000.0))
                pending = (upright(frame.to_image(), frame.rotation), t)
            if pending is not None:  # the last frame: until the stream's end, if it says
                rest = self.info.seconds - pending[1]
                yield Frame(pending[0], 1000.0 * (rest if 0.001 <= rest <= 2 / self.out_fps
                                                  else 1 / self.out_fps))
        except (ClipTooLongError, GeneratorExit):
            raise
        except self._av.error.FFmpegError as exc:
            if kept:
                raise CorruptClipError(f"The video is damaged after frame {kept}. "
                                       "Send the complete file again.") from exc
            raise CorruptClipError("The video's frames cannot be decoded. "
                                   "Send the complete file again.") from exc
        finally:
            if own:
                container.close()


def upright(image: Image.Image, rotation: float) -> Image.Image:
    """The frame as it is meant to be seen: phones store a portrait clip landscape and say, in
    the display matrix, by how much to turn it (``rotation`` degrees counter-clockwise)."""
    quarter = round(rotation / 90.0) % 4
    if not quarter:
        return image
    return image.transpose((Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                            Image.Transpose.ROTATE_270)[quarter - 1])


def _first_rotation(container, stream) -> int:
    """The display rotation, read off the first frame (PyAV exposes it per frame); 0 when the
    frame cannot be decoded, which :meth:`_VideoSource.frames` then reports."""
    try:
        for frame in container.decode(stream):
            return int(frame.rotation or 0)
    except Exception:
        pass
    return 0


def _container_name(data: bytes) -> str:
    head = bytes(data[:16])
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "webm"
    return "mov" if head[8:12] == b"qt  " else "mp4"

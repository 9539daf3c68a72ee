"""Encoders for stylized clips: GIF (per-frame durations and the loop count kept) and H.264 MP4
(each frame's display time kept, so a variable-frame-rate video stays in sync with its sound;
the audio track copied unchanged when MP4 can hold its codec).

Both take frames one at a time. The MP4 encoder writes each frame as it comes, so only the
encoded bytes grow; the GIF one keeps each frame palettised (1 byte a pixel: 130 kB at
480x270), because Pillow writes a GIF in one call.
"""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

from PIL import Image

GIF_TYPE, MP4_TYPE = "image/gif", "video/mp4"
# audio codecs the MP4 muxer takes as they are; others (Vorbis, PCM) are dropped, not transcoded
MP4_AUDIO = ("aac", "mp3", "opus", "alac", "ac3", "eac3", "flac")
H264_CRF = "23"       # x264's default quality
H264_PRESET = "veryfast"  # about 2x faster than "medium" for a few percent more bytes
MP4_TIME_BASE = Fraction(1, 90000)  # MPEG's clock: whole ticks for 24, 25, 30, 50, 60 fps


class GifEncoder:
    """Collects palettised frames and writes one GIF."""

    content_type = GIF_TYPE

    def __init__(self, loop: int = 0):
        self.loop = loop
        self.frames: list[Image.Image] = []
        self.durations: list[int] = []

    def add(self, image: Image.Image, duration_ms: float) -> None:
        # no dithering: error diffusion differs from frame to frame and reads as flicker
        self.frames.append(image.convert("RGB").quantize(
            256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE))
        self.durations.append(max(1, round(duration_ms)))

    def finish(self) -> bytes:
        if not self.frames:
            raise ValueError("no frames to encode")
        buf = io.BytesIO()
        first, rest = self.frames[0], self.frames[1:]
        first.save(buf, format="GIF", save_all=True, append_images=rest,
                   duration=self.durations, loop=self.loop, disposal=1, optimize=False)
        self.frames.clear()
        return buf.getvalue()


def even_size(width: int, height: int) -> tuple[int, int]:
    """H.264 in 4:2:0 needs even sides: drop the last row/column of an odd one."""
    return max(2, width - width % 2), max(2, height - height % 2)


class Mp4Encoder:
    """H.264 (libx264, yuv420p) MP4, nominally at ``fps``, each frame stamped with the sum of
    the durations before it; ``audio_from`` is an input stream whose packets
    :meth:`mux_audio` copies in."""

    content_type = MP4_TYPE

    def __init__(self, fps: float, audio_from=None):
        import av

        self._av = av
        # a file, not memory: faststart (the index first, so players start before the end)
        # rewrites the file after the last frame
        self._dir = tempfile.TemporaryDirectory(prefix="msgnet-clip-")
        self.path = Path(self._dir.name) / "out.mp4"
        self.out = av.open(str(self.path), mode="w", format="mp4",
                           options={"movflags": "+faststart"})
        self.rate = Fraction(fps).limit_denominator(1001)
        self.video = None
        self.count = 0
        self.shown_s = 0.0  # where the next frame starts
        self.audio = None
        self.audio_note = "none"
        if audio_from is not None:
            name = audio_from.codec_context.name
            if name in MP4_AUDIO:
                self.audio = self.out.add_stream_from_template(audio_from)
                self.audio_note = f"kept ({name})"
            else:
                self.audio_note = f"dropped ({name} does not fit in MP4)"

    def _open_video(self, width: int, height: int) -> None:
        self.video = self.out.add_stream("libx264", rate=self.rate,
                                         options={"crf": H264_CRF, "preset": H264_PRESET})
        self.video.width, self.video.height = even_size(width, height)
        self.video.pix_fmt = "yuv420p"
        self.video.codec_context.time_base = MP4_TIME_BASE

    def add(self, image: Image.Image, duration_ms: float | None = None) -> None:
        if self.video is None:
            self._open_video(image.width, image.height)
        w, h = self.video.width, self.video.height
        if image.size != (w, h):
            image = image.crop((0, 0, w, h))
        frame = self._av.VideoFrame.from_image(image.convert("RGB"))
        frame.pts = round(self.shown_s / MP4_TIME_BASE)
        frame.time_base = MP4_TIME_BASE
        self.shown_s += (1.0 / float(self.rate) if duration_ms is None
                         else duration_ms / 1000.0)
        self.count += 1
        for packet in self.video.encode(frame):
            self.out.mux(packet)

    def mux_audio(self, packet) -> None:
        """Copy one demuxed audio packet (ignored when the audio is dropped)."""
        if self.audio is None or packet.dts is None or packet.size == 0:
            return
        packet.stream = self.audio
        self.out.mux(packet)

    def finish(self) -> bytes:
        if self.video is None:
            self.close()
            raise ValueError("no frames to encode")
        try:
            for packet in self.video.encode():
                self.out.mux(packet)
            self.out.close()
            return self.path.read_bytes()
        finally:
            self.close()

    def close(self) -> None:
        """Drop the temporary file (also after a failure or a cancel)."""
        try:
            self.out.close()
        except Exception:  # already closed, or never got a frame
            pass
        self._dir.cleanup()

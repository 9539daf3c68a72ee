"""Hypothesis strategies for uploads: generated pictures in every mode and format we meet, and
broken bytes (truncated, bit-flipped, random, headers that lie about the size).

Kept apart from the tests (tests/test_fuzz_inputs.py) so the strategies can be reused and each
file stays about one thing. A :class:`Upload` carries the bytes and what a correct decoder must
make of them: the upright size, or ``None`` when only "an image or a clean error" is required.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from PIL import Image

# (format, modes it can store); ICO is a format we refuse with a readable message
MODES = ("1", "L", "LA", "P", "P+t", "RGB", "RGBA", "I;16", "I", "F", "CMYK", "YCbCr")
FORMAT_MODES: dict[str, tuple[str, ...]] = {
    "JPEG": ("1", "L", "RGB", "CMYK", "YCbCr"),
    "PNG": ("1", "L", "LA", "P", "P+t", "RGB", "RGBA", "I;16", "RGB;16", "RGBA;16"),
    "GIF": ("L", "P", "P+t", "RGB"),
    "WEBP": ("L", "RGB", "RGBA"),
    "BMP": ("1", "L", "P", "RGB", "RGBA"),
    "TIFF": MODES,
    "ICO": ("RGB", "RGBA"),
}
REFUSED_FORMATS = ("ICO",)
MAX_SIDE = 10_000          # aspect ratios 1:10 000 .. 10 000:1
# generated pictures stay cheap to encode in the normal suite; the cap itself is tested apart
MAX_AREA = int(os.environ.get("MSGNET_FUZZ_MAX_AREA", str(1 << 14)))
ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Upload:
    """Bytes to send and the upright size they must decode to (None: not predictable)."""

    data: bytes
    kind: str
    size: tuple[int, int] | None
    refused: bool = False   # a format we do not accept: must be a NotAnImage-style error


# ------------------------------------------------------------------ pixels in any mode
def make_image(mode: str, w: int, h: int, seed: int) -> Image.Image:
    """A seeded picture of ``mode`` (``P+t``: palette with a transparent index)."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if mode == "P+t":
        img = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        img.info["transparency"] = 0
        return img
    if mode in ("I;16", "I", "F"):
        if mode == "I;16":
            arr = rng.integers(0, 65536, (h, w), dtype=np.uint16)
            return Image.fromarray(arr)  # uint16 -> I;16
        if mode == "I":
            return Image.fromarray(rng.integers(-1000, 70000, (h, w)).astype(np.int32), "I")
        return Image.fromarray(rng.random((h, w), dtype=np.float32) * 300.0 - 20.0, "F")
    if mode in ("LA", "RGBA"):
        img = rgb.convert(mode)
        img.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
        return img
    return rgb.convert(mode)


def png_raw(arr: np.ndarray, interlace: bool) -> bytes:
    """A PNG written by hand: 8/16-bit grey/RGB/RGBA, optionally Adam7-interlaced (Pillow
    writes neither 16-bit colour nor interlaced PNGs, and phones and scanners send both)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    depth = 16 if arr.dtype == np.uint16 else 8
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    be = arr.astype(">u2") if depth == 16 else arr.astype(np.uint8)
    passes = ([(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
               (1, 0, 2, 2), (0, 1, 1, 2)] if interlace else [(0, 0, 1, 1)])
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        sub = be[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.tobytes()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(
            ">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def encode(fmt: str, mode: str, w: int, h: int, seed: int, opts: dict) -> bytes:
    """``mode`` pixels of ``w`` x ``h`` saved as ``fmt`` with the chosen options."""
    if fmt == "PNG" and (mode.endswith(";16") and mode != "I;16" or opts.get("interlace")):
        rng = np.random.default_rng(seed)
        channels = {"RGB;16": 3, "RGBA;16": 4}.get(mode, {"L": 1, "LA": 2, "RGBA": 4}.get(mode, 3))
        dtype = np.uint16 if mode.endswith(";16") else np.uint8
        arr = rng.integers(0, np.iinfo(dtype).max + 1, (h, w, channels), dtype=dtype)
        return png_raw(arr, interlace=bool(opts.get("interlace")))
    img = make_image(mode, w, h, seed)
    buf = io.BytesIO()
    kw: dict = {}
    if fmt == "JPEG":
        kw = {"progressive": opts["progressive"], "quality": opts["quality"]}
        if opts["orientation"] != 1:
            exif = Image.Exif()
            exif[0x0112] = opts["orientation"]
            kw["exif"] = exif.tobytes()
    elif fmt == "WEBP":
        kw = {"lossless": opts["lossless"]}
    elif fmt == "TIFF":
        kw = {"compression": opts["compression"]}
    if opts.get("frames", 1) > 1 and fmt in ("GIF", "WEBP", "TIFF"):
        more = [make_image(mode, w, h, seed + i) for i in range(1, opts["frames"])]
        kw.update(save_all=True, append_images=more)
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@st.composite
def sizes(draw, max_area: int = MAX_AREA) -> tuple[int, int]:
    """(w, h) from 1x1 up to ``max_area`` pixels, aspect log-uniform in 1:10 000..10 000:1."""
    log_aspect = draw(st.floats(-math.log(MAX_SIDE), math.log(MAX_SIDE)))
    log_area = draw(st.floats(0.0, math.log(max_area)))
    w = int(round(math.exp((log_area + log_aspect) / 2)))
    h = int(round(math.exp((log_area - log_aspect) / 2)))
    w, h = min(max(w, 1), MAX_SIDE), min(max(h, 1), MAX_SIDE)
    while w * h > max_area:
        w, h = max(1, w // 2), max(1, h // 2)
    return draw(st.sampled_from([(w, h), (1, 1), (w, 1), (1, h)])) if draw(
        st.integers(0, 9)) == 0 else (w, h)


@st.composite
def format_options(draw, fmt: str) -> dict:
    if fmt == "JPEG":
        return {"progressive": draw(st.booleans()), "quality": draw(st.integers(5, 95)),
                "orientation": draw(st.integers(1, 8))}
    if fmt == "PNG":
        return {"interlace": draw(st.booleans())}
    if fmt == "WEBP":
        return {"lossless": draw(st.booleans()), "frames": draw(st.integers(1, 3))}
    if fmt == "GIF":
        return {"frames": draw(st.integers(1, 3))}
    if fmt == "TIFF":
        return {"compression": draw(st.sampled_from(
                    [None, "tiff_deflate", "tiff_lzw", "packbits", "tiff_adobe_deflate"])),
                "frames": draw(st.integers(1, 3))}
    return {}


@st.composite
def valid_uploads(draw, max_area: int = MAX_AREA) -> Upload:
    """A well-formed picture in one of the formats and modes, with its expected size."""
    fmt = draw(st.sampled_from(sorted(FORMAT_MODES)))
    mode = draw(st.sampled_from(FORMAT_MODES[fmt]))
    w, h = draw(sizes(max_area if fmt not in ("ICO", "WEBP", "GIF") else min(max_area, 1 << 14)))
    if fmt == "ICO":
        w, h = min(w, 256), min(h, 256)  # ICO stores at most 256 px sides
    if fmt == "WEBP":
        w, h = min(w, 16383), min(h, 16383)
    opts = draw(format_options(fmt))
    seed = draw(st.integers(0, 2**16))
    data = encode(fmt, mode, w, h, seed, opts)
    size = (w, h)
    if fmt == "JPEG" and opts["orientation"] in ROTATING_ORIENTATIONS:
        size = (h, w)
    if fmt == "ICO":
        size = None
    kind = f"{fmt}/{mode}" + "".join(f"/{k}={v}" for k, v in sorted(opts.items())
                                      if k != "quality")
    return Upload(data, kind, size, refused=fmt in REFUSED_FORMATS)


# ------------------------------------------------------------------ broken bytes
def _lie_png(data: bytearray, w: int, h: int) -> None:
    data[16:24] = struct.pack(">II", w & 0xFFFFFFFF, h & 0xFFFFFFFF)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)


def _lie_jpeg(data: bytearray, w: int, h: int) -> None:
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        at = data.find(marker, 2)
        if at > 0:
            data[at + 5:at + 9] = struct.pack(">HH", h & 0xFFFF, w & 0xFFFF)
            return


def _lie_gif(data: bytearray, w: int, h: int) -> None:
    data[6:10] = struct.pack("<HH", w & 0xFFFF, h & 0xFFFF)
    at = data.find(b"\x2c", 13)  # the first image descriptor
    if at > 0:
        data[at + 5:at + 9] = struct.pack("<HH", w & 0xFFFF, h & 0xFFFF)


def _lie_bmp(data: bytearray, w: int, h: int) -> None:
    data[18:26] = struct.pack("<ii", max(-2**31, min(w, 2**31 - 1)),
                              max(-2**31, min(h, 2**31 - 1)))


LIARS = {"PNG": _lie_png, "JPEG": _lie_jpeg, "GIF": _lie_gif, "BMP": _lie_bmp}


@st.composite
def broken_uploads(draw) -> Upload:
    """A small valid picture, then damaged: truncated, bit-flipped, replaced by random bytes,
    or with a header that lies about its dimensions (bomb-sized, zero, negative, off by one)."""
    how = draw(st.sampled_from(["truncated", "bit-flipped", "random", "lying-header",
                                "magic+random"]))
    if how == "random":
        return Upload(draw(st.binary(min_size=0, max_size=4096)), how, None)
    fmt = draw(st.sampled_from(["JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF"]
                               if how != "lying-header" else sorted(LIARS)))
    if how == "magic+random":
        magic = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n", "GIF": b"GIF89a",
                 "BMP": b"BM", "WEBP": b"RIFF\x00\x00\x00\x00WEBP", "TIFF": b"II*\x00"}[fmt]
        return Upload(magic + draw(st.binary(max_size=2048)), f"{how}/{fmt}", None)
    mode = draw(st.sampled_from([m for m in FORMAT_MODES[fmt] if m not in ("RGB;16",
                                                                          "RGBA;16")]))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    data = bytearray(encode(fmt, mode, w, h, draw(st.integers(0, 999)),
                            draw(format_options(fmt))))
    if how == "truncated":
        data = data[:draw(st.integers(0, max(0, len(data) - 1)))]
    elif how == "bit-flipped":
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
    else:
        side = st.one_of(st.sampled_from([0, 1, w + 1, 65535, 2**31 - 1, -1, -2**31]),
                         st.integers(0, 70000))
        LIARS[fmt](data, draw(side), draw(side))
    return Upload(bytes(data), f"{how}/{fmt}", None)

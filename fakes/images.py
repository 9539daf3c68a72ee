"""Generated test images: small JPEG/PNG photos, seeded noise, and a PNG that is only a header
(a decompression bomb's claim without its pixels)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def jpeg(width: int, height: int, color=(40, 120, 200)) -> bytes:
    img = Image.new("RGB", (width, height), color)
    for x in range(0, width, 8):  # some structure so the JPEG is not trivial
        img.putpixel((x, x * height // max(width, 1)), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png(width: int, height: int, color=(200, 60, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def noise_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels but carries no pixel data (a bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")

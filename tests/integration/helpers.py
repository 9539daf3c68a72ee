"""Small helpers shared by the integration tests: test images, HTTP calls, polling."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import numpy as np
from PIL import Image


def wait_for(condition: Callable[[], object], timeout: float, what: str,
             interval: float = 0.05) -> object:
    """Poll ``condition`` until it returns something truthy (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


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


def form(**fields: bytes | str | int) -> aiohttp.FormData:
    """multipart/form-data: bytes become file parts, anything else a text field."""
    data = aiohttp.FormData()
    for name, value in fields.items():
        if isinstance(value, bytes):
            data.add_field(name, value, filename=f"{name}.bin",
                           content_type="application/octet-stream")
        else:
            data.add_field(name, str(value))
    return data


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0]

    def image(self) -> Image.Image:
        img = Image.open(io.BytesIO(self.body))
        img.load()
        return img

    def json(self):
        import json
        return json.loads(self.body)


async def post(session: aiohttp.ClientSession, url: str, headers: dict, *,
               data=None, json=None) -> Reply:
    async with session.post(url, data=data, json=json, headers=headers) as resp:
        return Reply(resp.status, dict(resp.headers), await resp.read())


async def ndjson_lines(resp: aiohttp.ClientResponse) -> AsyncIterator[dict]:
    """The lines of a streamed ``application/x-ndjson`` answer (a clip's progress, then its
    final line), each as it arrives; aiohttp's errors (a cut answer) come through."""
    buffer = b""
    async for chunk in resp.content.iter_any():
        buffer += chunk
        *done, buffer = buffer.split(b"\n")
        for line in done:
            if line:
                yield json.loads(line)

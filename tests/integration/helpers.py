"""Small helpers shared by the integration tests: test images (from :mod:`fakes.images`),
HTTP calls, polling."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from PIL import Image

from fakes.images import encode, noise_image, png_header_only
from tsclient.form import aiohttp_form, upload_form

__all__ = ["Reply", "encode", "form", "ndjson_lines", "noise_image", "png_header_only", "post",
           "wait_for"]


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


def form(**fields: bytes | str | int) -> aiohttp.FormData:
    """multipart/form-data: bytes become file parts, anything else a text field."""
    return aiohttp_form(upload_form(**fields))


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

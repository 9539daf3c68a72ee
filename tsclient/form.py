"""Multipart forms for TorchServe's inference API, built in one place.

A form is a list of :data:`Part` ``(name, value, filename)``; a filename makes the part a file
upload. :func:`encode` turns it into a body for stdlib callers (like ``curl -F``);
:func:`aiohttp_form` into an ``aiohttp.FormData`` for the async ones (aiohttp is imported only
there, so the sync client stays stdlib only).
"""

from __future__ import annotations

import uuid
from typing import Any

Part = tuple[str, bytes, str | None]


def part(name: str, value: bytes | str | int, filename: str | None = None) -> Part:
    data = value if isinstance(value, bytes) else str(value).encode()
    return name, data, filename


def style_form(
    content: bytes,
    style: bytes | None = None,
    style_id: str | None = None,
    fields: dict[str, str] | None = None,
    *,
    content_name: str = "content",
    style_name: str = "style",
) -> list[Part]:
    """A stylize request: the content photo (or clip), a style upload and/or a preset name,
    and further fields (size, format, strength, action ...)."""
    parts = [part("content", content, content_name)]
    if style is not None:
        parts.append(part("style", style, style_name))
    if style_id is not None:
        parts.append(part("style_id", str(style_id)))
    parts += [part(key, value) for key, value in (fields or {}).items()]
    return parts


def upload_form(**fields: bytes | str | int) -> list[Part]:
    """A form from keyword fields: bytes become file parts (``NAME.bin``), anything else a text
    field."""
    return [part(k, v, f"{k}.bin" if isinstance(v, bytes) else None) for k, v in fields.items()]


def encode(parts: list[Part]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value, filename in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def multipart(parts: list[Part]) -> tuple[bytes, str]:
    """:func:`encode` (the scripts' name for it)."""
    return encode(parts)


def aiohttp_form(parts: list[Part]) -> Any:
    """The same form as an ``aiohttp.FormData`` (a fresh one per attempt: sending consumes
    it); file parts go as application/octet-stream, text parts as text."""
    import aiohttp

    data = aiohttp.FormData()
    for name, value, filename in parts:
        if filename is not None:
            data.add_field(name, value, filename=filename, content_type="application/octet-stream")
        else:
            data.add_field(name, value.decode())
    return data

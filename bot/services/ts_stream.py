"""A streamed (NDJSON) answer of the clip model: progress lines, then the final line.

A clip's streamed answer that ends without its final line (when the clip worker dies,
TorchServe 0.12 drops the connection after the 200 and the progress lines it has sent, with no
error line or 5xx) is a :data:`~tsclient.errors.STREAM_CUT` error, not retried: a clip is
minutes of work, and what killed its worker (memory) may be the clip itself.
"""

from __future__ import annotations

import json

import aiohttp

from tsclient.errors import SERVER, STREAM_CUT, TorchServeError

NDJSON = "application/x-ndjson"  # the clip model's streamed answer (progress, then the clip)


async def last_line(resp: aiohttp.ClientResponse, on_progress) -> bytes:
    """Read an NDJSON answer: every ``{"done", "total"}`` line to ``on_progress``, and the
    last line (the clip, several MB of base64: split by hand, not by readline's 64 kB cap).
    An answer that stops before a final line (a JSON object with ``status``) is a
    :data:`STREAM_CUT` error: the chunked body cut off, or ended after progress lines only."""
    buffer, last = b"", b""
    progress, frames = 0, ""
    while True:
        try:
            chunk = await resp.content.readany()
        except TimeoutError:  # aiohttp's socket timeouts too: the caller's TIMEOUT
            raise
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise stream_cut(progress, frames,
                              f"the answer broke off ({type(exc).__name__})") from None
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                item = None
            if isinstance(item, dict) and "done" in item and "body" not in item:
                progress += 1
                frames = f"{item['done']} of {item.get('total') or '?'} frames"
                await on_progress(int(item["done"]), int(item.get("total") or 0))
            else:
                last = line
    last = last or buffer
    try:
        final = json.loads(last)
    except ValueError:
        final = None
    if not isinstance(final, dict) or "status" not in final:
        raise stream_cut(progress, frames, "the answer ended without its final line")
    return last


def stream_cut(progress: int, frames: str, how: str) -> TorchServeError:
    detail = f" ({frames})" if frames else ""
    return TorchServeError(f"clip stream cut after {progress} progress lines{detail}: {how}",
                           kind=SERVER, code=STREAM_CUT)

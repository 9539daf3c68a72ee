"""The bot's client of the MSG-Net TorchServe inference API: stylize photos and clips, the
server's presets and previews, cancels of abandoned clips.

The pieces it is made of, one job each:

* :mod:`tsclient.errors`: :class:`TorchServeError` and its ``kind`` constants (CLIENT, BUSY,
  DOWN, TIMEOUT, SERVER) and codes (WORKER_DIED, STREAM_CUT, INVALID_KEY), shared with the
  scripts' sync client; :mod:`tsclient.keys`: :class:`InferenceKey` (key_file.json);
  :mod:`tsclient.form`: the multipart forms;
* :mod:`bot.services.ts_transport`: the session, timeouts, retries and answer mapping;
* :mod:`bot.services.ts_stream`: a clip's streamed (NDJSON) answer;
* :mod:`bot.services.ts_answers`: ServerInfo, Preset, StyledImage, StyledClip.

Their names are importable from here too (``from bot.services import torchserve as ts``).

The server is the source of truth for presets and sizes: they are fetched from it and cached
for a few minutes, never read from a local copy.

A clip sent with a ``cancel_token`` that nobody waits for any more (its job cancelled, timed
out or shut down) is also stopped on the server: closing the request does not reach the
TorchServe worker, so the client sends ``cancel=<token>`` to the photo model (the clip model's
one worker is busy with the clip) in the background; a failed cancel is only logged. A clip
whose stream was cut (:data:`STREAM_CUT`) is cancelled on the server too, in case only the
connection was lost and the worker is still at it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import OrderedDict

import aiohttp

from bot.services.ts_answers import Preset, ServerInfo, StyledClip, StyledImage
from bot.services.ts_stream import NDJSON
from bot.services.ts_transport import Transport
from tsclient.errors import (
    BUSY,
    CLIENT,
    DOWN,
    INVALID_KEY,
    SERVER,
    STREAM_CUT,
    TIMEOUT,
    WORKER_DIED,
    InvalidKeyError,
    TorchServeError,
)
from tsclient.form import aiohttp_form, style_form
from tsclient.keys import InferenceKey

__all__ = ["BUSY", "CLIENT", "DOWN", "INVALID_KEY", "NDJSON", "SERVER", "STREAM_CUT",
           "TIMEOUT", "WORKER_DIED", "InferenceKey", "InvalidKeyError", "Preset", "ServerInfo",
           "StyledClip", "StyledImage", "TorchServeClient", "TorchServeError"]

log = logging.getLogger(__name__)


class TorchServeClient(Transport):
    """Stylization, presets and previews over TorchServe's REST inference API."""

    def __init__(self, base_url: str, model: str, version: str = "", *,
                 key: InferenceKey | None = None, timeout: float = 180.0,
                 clip_model: str = "", clip_timeout: float = 1860.0,
                 connect_timeout: float = 5.0, retries: int = 3, retry_delay: float = 1.0,
                 info_ttl: float = 300.0, max_connections: int = 16):
        super().__init__(base_url, model, version, key=key, timeout=timeout,
                         connect_timeout=connect_timeout, retries=retries,
                         retry_delay=retry_delay, max_connections=max_connections)
        self.clip_model = clip_model or model
        self.clip_timeout = self.client_timeout(clip_timeout)
        self.info_ttl = info_ttl
        self._info: ServerInfo | None = None
        self._info_at = 0.0
        self._info_lock = asyncio.Lock()
        self._previews: OrderedDict[str, bytes] = OrderedDict()
        self._cancels: set[asyncio.Task] = set()  # cancels of abandoned clips, in flight

    async def close(self, cancel_wait: float = 5.0) -> None:
        """Close the session, once the cancels of abandoned clips have gone (at most
        ``cancel_wait`` seconds)."""
        if self._cancels:
            await asyncio.wait(set(self._cancels), timeout=cancel_wait)
        await super().close()

    # --- public API -------------------------------------------------------------------------

    async def stylize(self, content: bytes, *, style: bytes | None = None,
                      style_id: str | None = None, size: int | None = None,
                      style_size: int | None = None, fmt: str = "jpeg",
                      options: dict[str, str] | None = None) -> StyledImage:
        """Stylize ``content`` with a style image, a preset (or a ``NAME:W,...`` mix), or both
        mixed; ``options`` are further REST fields (strength, keep_colors, brush, action)."""
        sheet = (options or {}).get("action") == "sheet"
        if style is None and style_id is None and not sheet:
            raise ValueError("give a style, a style_id or both")

        fields = {**(options or {}), "format": fmt}
        if size:
            fields["size"] = str(size)
        if style_size:
            fields["style_size"] = str(style_size)

        def form() -> aiohttp.FormData:
            return aiohttp_form(style_form(content, style, style_id, fields))

        status, ctype, body = await self._post(form, self.timeout, "stylize")
        if not ctype.startswith("image/"):
            raise TorchServeError(f"expected an image, got {ctype or 'no type'}", status,
                                  kind=SERVER)
        return StyledImage(body, ctype)

    async def stylize_clip(self, content: bytes, *, style: bytes | None = None,
                           style_id: str | None = None, options: dict[str, str] | None = None,
                           on_progress=None, cancel_token: str | None = None) -> StyledClip:
        """Stylize a GIF or video on the clip model. The server streams ``{"done", "total"}``
        lines (``on_progress(done, total)`` is awaited for each), then one line with the clip
        (base64) or its error; an error found before any frame is a plain 4xx answer.

        With ``cancel_token`` (16-64 of ``A-Za-z0-9_-``) a call that is cancelled or times out
        also asks the server to stop the clip (:meth:`cancel_clip`, in the background)."""
        fields = {**(options or {}), "progress": "true"}
        if cancel_token:
            fields["cancel_token"] = cancel_token

        def form() -> aiohttp.FormData:
            return aiohttp_form(style_form(content, style, style_id, fields))

        try:
            status, ctype, lines = await self._post(form, self.clip_timeout, "clip",
                                                    model=self.clip_model, stream=on_progress)
        except asyncio.CancelledError:
            if cancel_token:
                self._cancel_later(cancel_token)
            raise
        except TorchServeError as exc:
            if exc.code == STREAM_CUT:
                log.warning("torchserve clip: %s", exc.message)
            # the server may still be at it (a cut stream: only the connection may be gone)
            if cancel_token and (exc.kind == TIMEOUT or exc.code == STREAM_CUT):
                self._cancel_later(cancel_token)
            raise
        if ctype in ("image/gif", "video/mp4"):  # a server that did not stream
            return StyledClip(lines, ctype)
        if ctype.startswith("image/"):  # a still GIF: the server answered with a photo
            return StyledClip(lines, ctype)
        try:
            final = json.loads(lines)
        except ValueError:
            raise TorchServeError("bad clip answer", kind=SERVER) from None
        if final.get("status") != 200:
            raise self._error(int(final.get("status") or 500), "application/json", lines, 1)
        try:
            body = base64.b64decode(final["body"])
        except (KeyError, ValueError, TypeError):
            raise TorchServeError("bad clip answer: no body", kind=SERVER) from None
        return StyledClip(body, str(final.get("content_type") or ""), str(final.get("clip", "")))

    async def cancel_clip(self, token: str) -> bool:
        """Ask the server to stop the clip sent with ``cancel_token=token``: ``cancel=<token>``
        to the photo model, whose worker records it where the clip worker looks before each
        chunk of frames. False (logged, never raised) when that fails."""
        try:
            _, _, body = await self._post(lambda: {"json": {"cancel": token}},
                                          self.info_timeout, "cancel")
        except TorchServeError as exc:
            log.warning("clip cancel not delivered to TorchServe (%s, HTTP %s, %s): the server "
                        "may finish the clip", exc.kind, exc.status, exc.code or "no code")
            return False
        except (aiohttp.ClientError, RuntimeError) as exc:  # e.g. the session closed meanwhile
            log.warning("clip cancel not delivered to TorchServe: %s", type(exc).__name__)
            return False
        log.debug("clip cancel %s delivered: %s", token, body[:100])
        return True

    def _cancel_later(self, token: str) -> None:
        """:meth:`cancel_clip` in a task of its own: the caller is being cancelled."""
        task = asyncio.get_running_loop().create_task(self.cancel_clip(token),
                                                      name="torchserve-clip-cancel")
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def server_info(self, *, refresh: bool = False) -> ServerInfo:
        """Presets and sizes, cached for ``info_ttl`` seconds (a stale copy if the server is
        down and one was fetched before)."""
        async with self._info_lock:
            fresh = time.monotonic() - self._info_at < self.info_ttl
            if self._info is not None and fresh and not refresh:
                return self._info
            try:
                status, ctype, body = await self._post(
                    lambda: {"json": {"action": "presets"}}, self.info_timeout, "presets")
                info = ServerInfo.from_json(json.loads(body))
            except TorchServeError:
                if self._info is not None and not refresh:
                    log.warning("using a stale preset list: TorchServe did not answer")
                    return self._info
                raise
            except (ValueError, TypeError) as exc:
                raise TorchServeError(f"bad presets answer: {exc}", kind=SERVER) from None
            if self._info is None or self._info.presets != info.presets:
                self._previews.clear()
            self._info, self._info_at = info, time.monotonic()
            return info

    async def preview(self, name: str) -> bytes:
        """A preset's preview image (JPEG), cached in memory."""
        if name in self._previews:
            self._previews.move_to_end(name)
            return self._previews[name]
        _, ctype, body = await self._post(
            lambda: {"json": {"action": "preview", "style_id": name}}, self.info_timeout,
            "preview")
        if not ctype.startswith("image/"):
            raise TorchServeError(f"expected a preview image, got {ctype}", kind=SERVER)
        self._previews[name] = body
        while len(self._previews) > 128:
            self._previews.popitem(last=False)
        return body

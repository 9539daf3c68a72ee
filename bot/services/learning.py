"""The TorchServe calls for a user's learned styles: learn one, list, rename, forget.

Kept apart from :mod:`bot.services.torchserve` (photos, clips, presets) but through the same
:class:`~bot.services.torchserve.TorchServeClient`: its session, inference key (re-read after
a 401), retries and error kinds, so the bot maps a failure here exactly as for a photo.

Learning runs on its own model (``msgnet_learn``, docs/serving.md "Learning a style"): a
multipart ``action=learn`` whose answer streams NDJSON - a first line, a progress line
``{"step", "steps", ...}`` at most once a second, then a final line with ``status``. A fit is
a minute of one worker's time, so it is sent once, never retried; a call abandoned (the job
cancelled or timed out) also sends ``cancel=<token>`` to the photo model, as clips do.

A server that cannot learn (no such model: 404; or 503 ``learning_unavailable``) is
remembered for a while, so the bot stops offering the button instead of failing each time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.services import torchserve as ts
from tsclient import form

log = logging.getLogger(__name__)

LEARNING_UNAVAILABLE = "learning_unavailable"
Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class Learned:
    """A style the server has learned and saved."""

    name: str
    seconds: float
    steps: int


@dataclass(frozen=True)
class MyStyles:
    """One owner's learned styles (the ``learned`` part of the presets answer)."""

    names: tuple[str, ...]
    max_per_owner: int = 0  # 0: the server did not say


class LearnClient:
    """Learned-style calls of one bot, over the shared TorchServe client."""

    def __init__(self, client: ts.TorchServeClient, model: str = "msgnet_learn", *,
                 timeout: float = 660.0, steps: int | None = None,
                 unavailable_for: float = 600.0):
        self.ts = client
        self.model = model
        self.steps = steps
        self.timeout = aiohttp.ClientTimeout(total=timeout,
                                             connect=client.timeout.connect,
                                             sock_connect=client.timeout.sock_connect)
        self.unavailable_for = unavailable_for
        self._unavailable_until = 0.0

    # --- availability -------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False for ``unavailable_for`` seconds after the server said it cannot learn."""
        return time.monotonic() >= self._unavailable_until

    def _mark_unavailable(self, why: str) -> None:
        log.warning("learning styles is unavailable on this server (%s): the button is hidden "
                    "for %.0f s", why, self.unavailable_for)
        self._unavailable_until = time.monotonic() + self.unavailable_for

    # --- the photo model: list, rename, forget ------------------------------------

    async def my_styles(self, owner: str) -> MyStyles:
        """``owner``'s learned styles, asked afresh (a rename or a new style shows at once)."""
        learned = (await self._json({"action": "presets", "owner": owner}, "my styles")
                   ).get("learned")
        if not isinstance(learned, dict):
            return MyStyles(())
        names = tuple(str(n) for n in learned.get("styles") or [])
        return MyStyles(names, int(learned.get("max_per_owner") or 0))

    async def rename(self, name: str, new_name: str, owner: str) -> None:
        await self._json({"action": "rename", "style_id": name, "new_name": new_name,
                          "owner": owner}, "rename")

    async def forget(self, name: str, owner: str) -> None:
        await self._json({"action": "forget", "style_id": name, "owner": owner}, "forget")

    async def _json(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        _, _, raw = await self.ts._post(lambda: {"json": body}, self.ts.info_timeout, what)
        try:
            answer = json.loads(raw)
        except ValueError:
            raise ts.TorchServeError(f"bad {what} answer", kind=ts.SERVER) from None
        if not isinstance(answer, dict):
            raise ts.TorchServeError(f"bad {what} answer", kind=ts.SERVER)
        return answer

    # --- the learn model --------------------------------------------------------------------

    async def learn(self, style: bytes, name: str, owner: str, *,
                    on_progress: Progress | None = None,
                    cancel_token: str | None = None) -> Learned:
        """Learn ``style`` as ``owner``'s style ``name``; ``on_progress(step, steps)`` is
        awaited for each progress line. Raises :class:`~bot.services.torchserve.
        TorchServeError` (``code`` from the server: not_an_image, store_full, name_exists,
        learning_unavailable, cancelled ...)."""
        try:
            final = await self._learn_once(style, name, owner, on_progress, cancel_token)
        except asyncio.CancelledError:
            if cancel_token:
                self.ts._cancel_later(cancel_token)
            raise
        except ts.TorchServeError as exc:
            if exc.code == LEARNING_UNAVAILABLE or (exc.status == 404 and not exc.code):
                self._mark_unavailable(exc.code or "no learn model")
            if cancel_token and (exc.kind == ts.TIMEOUT or exc.code == ts.STREAM_CUT):
                self.ts._cancel_later(cancel_token)  # the server may still be at it
            raise
        return Learned(str(final.get("name") or name), float(final.get("seconds") or 0.0),
                       int(final.get("steps") or 0))

    def _form(self, style: bytes, name: str, owner: str,
              cancel_token: str | None) -> aiohttp.FormData:
        parts = [form.part("action", "learn"), form.part("style", style, "style"),
                 form.part("name", name), form.part("owner", owner)]
        if self.steps:
            parts.append(form.part("steps", str(self.steps)))
        if cancel_token:
            parts.append(form.part("cancel_token", cancel_token))
        return form.aiohttp_form(parts)

    async def _learn_once(self, style: bytes, name: str, owner: str,
                          on_progress: Progress | None,
                          cancel_token: str | None) -> dict[str, Any]:
        """One POST (a refused key re-reads the key file once); the final line as a dict."""
        await self.ts.start()
        assert self.ts._session is not None
        url = f"{self.ts.base_url}/predictions/{self.model}"
        for attempt in (1, 2):
            try:
                async with self.ts._session.post(
                        url, headers=self.ts.key.headers(), timeout=self.timeout,
                        data=self._form(style, name, owner, cancel_token)) as resp:
                    if resp.status != 200:
                        body = await resp.read()
                        if self.ts.key_rejected(resp.status, body):
                            if attempt == 1 and self.ts.key.reload():
                                continue
                            raise self.ts._key_error(resp.status, attempt)
                        raise self.ts._error(resp.status, resp.content_type or "", body, 1)
                    return await _final_line(resp, on_progress)
            except aiohttp.ConnectionTimeoutError:
                raise ts.TorchServeError("learn: connect timeout", kind=ts.DOWN) from None
            except (TimeoutError, aiohttp.SocketTimeoutError):
                raise ts.TorchServeError(f"learn: no answer within "
                                         f"{self.timeout.total} s", kind=ts.TIMEOUT) from None
            except aiohttp.ClientConnectionError as exc:
                raise ts.TorchServeError(f"learn: {type(exc).__name__}", kind=ts.DOWN) from None
        raise ts.InvalidKeyError("the inference key was rejected (wrong or expired)")


async def _final_line(resp: aiohttp.ClientResponse, on_progress: Progress | None
                      ) -> dict[str, Any]:
    """Progress lines to ``on_progress``; the final line (with ``status``) returned when 200,
    raised as the server's error otherwise. An answer cut before it is a STREAM_CUT error."""
    final: dict[str, Any] | None = None
    try:
        async for raw in resp.content:
            try:
                item = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(item, dict):
                continue
            if "status" in item:
                final = item
            elif on_progress is not None and "step" in item and item.get("steps"):
                await on_progress(int(item["step"]), int(item["steps"]))
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        raise ts.TorchServeError(f"learn stream broke off ({type(exc).__name__})",
                                 code=ts.STREAM_CUT, kind=ts.SERVER) from None
    if final is None:
        raise ts.TorchServeError("learn stream ended without its final line",
                                 code=ts.STREAM_CUT, kind=ts.SERVER)
    status = int(final.get("status") or 500)
    if status != 200:
        raise ts.TorchServeClient._error(status, "application/json",
                                         json.dumps(final).encode(), 1)
    return final

"""Collects the messages of an album (same ``media_group_id``) into one handler call.

Telegram delivers an album as separate messages, usually within a fraction of a second.
The first message of a group waits until no new one has arrived for ``delay`` seconds, then
continues to the handlers with all of them, ordered, in ``data["album"]``; the others stop
here. aiogram has no built-in equivalent. It needs updates handled concurrently (the default
for polling, and for webhooks in background mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

MAX_WAIT_FACTOR = 10  # an album is closed after at most delay * this, however it trickles in


class _Group:
    def __init__(self, first: Message):
        self.messages = [first]
        self.arrived = asyncio.Event()


class AlbumMiddleware(BaseMiddleware):
    def __init__(self, delay: float = 0.6):
        self.delay = delay
        self._groups: dict[tuple[int, str], _Group] = {}

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message) or not event.media_group_id:
            return await handler(event, data)
        key = (event.chat.id, event.media_group_id)
        group = self._groups.get(key)
        if group is not None:
            group.messages.append(event)
            group.arrived.set()
            return None
        group = self._groups[key] = _Group(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.delay * MAX_WAIT_FACTOR
        try:
            while loop.time() < deadline:
                group.arrived.clear()
                try:
                    await asyncio.wait_for(group.arrived.wait(), self.delay)
                except TimeoutError:
                    break
        finally:
            del self._groups[key]
        data["album"] = sorted(group.messages, key=lambda m: m.message_id)
        return await handler(event, data)

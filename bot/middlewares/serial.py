"""One update at a time per user, so two quick uploads cannot overwrite each other's state.

Handlers read the user's FSM data, decide (is this image the photo or the style?) and write it
back; with Redis every read and write is a round trip, so two photos sent a moment apart (not
as an album) could both read "no photo yet" and both become the photo. aiogram's
``SimpleEventIsolation`` would serialize them too, but it also holds an album's first message
while the rest wait behind it, so the album never gathers. This lock is taken *after*
:class:`~bot.middlewares.album.AlbumMiddleware` (register it later): an album's other messages
have already stopped there, and the first one holds the lock for the whole album.

The lock is per process: with several replicas, Telegram's ordering per chat plus the per-user
job lock in Redis are what keeps them apart (docs/bot.md, "Several replicas").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User


class UserLockMiddleware(BaseMiddleware):
    """Runs a user's updates one after another; other users' run alongside. A lock lives
    only while someone holds or waits for it (no growth with the number of users)."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        lock, users = self._locks.get(user.id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[user.id] = (lock, users + 1)
        try:
            async with lock:
                return await handler(event, data)
        finally:
            lock, users = self._locks[user.id]
            if users == 1:
                del self._locks[user.id]
            else:
                self._locks[user.id] = (lock, users - 1)

    def waiting(self, user_id: int | None = None) -> int:
        """Updates holding or waiting for a lock: of ``user_id``, or the most of any user."""
        if user_id is not None:
            return self._locks.get(user_id, (None, 0))[1]
        return max((n for _, n in self._locks.values()), default=0)

    def __len__(self) -> int:
        """Users with a lock now (for tests: it returns to 0)."""
        return len(self._locks)

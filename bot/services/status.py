"""A job's status message, edited sparingly.

Telegram rate-limits edits, and a queue that moves quickly would otherwise produce an edit per
step. The message is edited at most once per ``min_interval``; the newest text wins and an
edit that would show the same text is skipped. It may be updated before it has been sent (the
worker can pick a job up before the "queued" message is out) and closed at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineKeyboardMarkup

log = logging.getLogger(__name__)


class StatusMessage:
    def __init__(self, bot: Bot, chat_id: int, markup: InlineKeyboardMarkup | None = None,
                 min_interval: float = 3.0):
        self.bot = bot
        self.chat_id = chat_id
        self.markup = markup
        self.min_interval = min_interval
        self.message_id: int | None = None
        self._shown: str | None = None
        self._wanted: str | None = None
        self._closed = False
        self._last_edit = 0.0
        self._lock = asyncio.Lock()
        self._deferred: asyncio.Task | None = None

    async def show(self, text: str) -> None:
        """Send the message (the newest text set so far wins over ``text``)."""
        async with self._lock:
            if self._closed or self.message_id is not None:
                return
            wanted = self._wanted or text
            try:
                message = await self.bot.send_message(self.chat_id, wanted,
                                                      reply_markup=self.markup)
            except TelegramAPIError as exc:
                log.warning("status message not sent: %s", type(exc).__name__)
                return
            self.message_id, self._shown = message.message_id, wanted
            self._last_edit = time.monotonic()
        if self._wanted and self._wanted != self._shown:
            await self.set(self._wanted)

    async def set(self, text: str) -> None:
        """Show ``text`` now, or as soon as the edit interval allows."""
        self._wanted = text
        if self.message_id is None or self._closed:
            return
        wait = self._last_edit + self.min_interval - time.monotonic()
        if wait > 0:
            if self._deferred is None or self._deferred.done():
                self._deferred = asyncio.create_task(self._edit_later(wait))
            return
        await self._edit()

    async def _edit_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._edit()

    async def _edit(self, markup: InlineKeyboardMarkup | None | bool = True) -> None:
        async with self._lock:
            text = self._wanted
            if self._closed or self.message_id is None or not text or text == self._shown:
                return
            await self._edit_locked(text, self.markup if markup is True else markup)

    async def _edit_locked(self, text: str, markup: InlineKeyboardMarkup | None) -> None:
        try:
            await self.bot.edit_message_text(text=text, chat_id=self.chat_id,
                                             message_id=self.message_id, reply_markup=markup)
        except TelegramAPIError as exc:  # "message is not modified", deleted by the user, ...
            log.debug("status edit skipped: %s", exc.message if hasattr(exc, "message") else exc)
        self._shown = text
        self._last_edit = time.monotonic()

    async def close(self, final_text: str | None = None) -> bool:
        """Stop updating; delete the message, or leave ``final_text`` (without buttons) in it.
        Returns True when ``final_text`` was shown in the status message itself."""
        if self._deferred is not None:
            self._deferred.cancel()
        async with self._lock:
            if self._closed:
                return False
            self._closed = True
            if self.message_id is None:
                return False
            if final_text is not None:
                await self._edit_locked(final_text, None)
                return True
            with contextlib.suppress(TelegramAPIError):
                await self.bot.delete_message(self.chat_id, self.message_id)
            return False

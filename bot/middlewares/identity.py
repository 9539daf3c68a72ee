"""Messages sent in the name of a chat get a clear refusal instead of a shared identity.

Telegram delivers a message of an anonymous group admin, or one posted "as the channel", with
``sender_chat`` set and one placeholder ``from`` user shared by every such sender. Keyed by
that user, they would share one job lock, one /cancel and one set of results, and could wipe
each other's. The bot keeps everything per person, so it asks them to write as themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

from bot.middlewares.access import Notices
from bot.texts import Translator


class SenderChatMiddleware(BaseMiddleware):
    """Drops messages with ``sender_chat``; answers them now and then (``notice_every`` s per
    sending chat), and never a channel's automatic forward into its discussion group."""

    def __init__(self, notice_every: float = 60.0):
        self._notices = Notices(notice_every)

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message) or event.sender_chat is None:
            return await handler(event, data)
        if not event.is_automatic_forward and self._notices.due(event.sender_chat.id):
            tr: Translator = data["tr"]
            await event.answer(tr("sender_chat_refused"))
        return None

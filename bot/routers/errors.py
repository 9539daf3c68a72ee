"""Updates that failed because Redis (``REDIS_URL``: FSM state, locks) is unreachable.

With Redis storage, aiogram loads the user's FSM state before any handler runs, so while Redis
is down every update fails there. Without this router the user would get silence and the log a
traceback per update; with it they are told, in their Telegram language (their /language
choice lives in the unreachable state), that the bot cannot take this now and to try again in
a minute, at most once per ``notice_every`` seconds each. The bot keeps polling; redis-py
reconnects on the next command once Redis is back, so recovery needs nothing from here.
"""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, User
from redis.exceptions import RedisError

from bot.middlewares.access import Notices
from bot.texts import Translator, pick_language

log = logging.getLogger(__name__)


def create_router(default_language: str = "en", notice_every: float = 10.0) -> Router:
    """A fresh router with the storage-down handler (a Router joins one Dispatcher)."""
    router = Router(name="errors")
    notices = Notices(notice_every)

    async def storage_down(event: ErrorEvent) -> None:
        log.warning("redis unavailable, update %s not handled: %s", event.update.update_id,
                    type(event.exception).__name__)
        message, query = event.update.message, event.update.callback_query
        user: User | None = (message.from_user if message else
                             query.from_user if query else None)
        if user is None:
            return
        tr = Translator(pick_language(user.language_code, None, default_language))
        text = tr("storage_down") if notices.due(user.id) else None
        try:
            if query is not None:
                await query.answer(text)  # always answered: or the button keeps spinning
            elif message is not None and text:
                await message.answer(text)
        except TelegramAPIError as exc:
            log.warning("storage-down notice not sent: %s", type(exc).__name__)

    router.errors.register(storage_down, ExceptionTypeFilter(RedisError))
    return router

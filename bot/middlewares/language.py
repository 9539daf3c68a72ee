"""Puts the user's translator (``tr``) and language code (``lang``) into handler data.

The user's own choice (/language, kept in FSM data) wins over their Telegram language.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.context import FSMContext
from aiogram.types import TelegramObject, User

from bot.texts import Translator, pick_language


class LanguageMiddleware(BaseMiddleware):
    def __init__(self, default: str = "en"):
        self.default = default

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        state: FSMContext | None = data.get("state")
        chosen = (await state.get_data()).get("lang") if state is not None else None
        lang = pick_language(user.language_code if user else None, chosen, self.default)
        data["lang"] = lang
        data["tr"] = Translator(lang)
        return await handler(event, data)

"""Everything no other router took: unknown commands, plain text, stickers, videos..."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.texts import Translator


def create_router() -> Router:
    router = Router(name="fallback")

    @router.message(F.text.startswith("/"))
    async def unknown_command(message: Message, tr: Translator) -> None:
        command = message.text.split()[0].split("@")[0]
        await message.answer(tr("unknown_command", command=command))

    @router.message(F.text)
    async def text(message: Message, tr: Translator) -> None:
        await message.answer(tr("text_hint"))

    @router.message(F.chat.type == "private")
    async def other(message: Message, tr: Translator) -> None:
        await message.answer(tr("unsupported_message"))

    @router.callback_query()
    async def stale_button(query: CallbackQuery) -> None:
        await query.answer()

    return router

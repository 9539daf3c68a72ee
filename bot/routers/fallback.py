"""Everything no other router took: unknown commands, plain text, stickers, videos..."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.texts import Translator


async def unknown_command(message: Message, tr: Translator) -> None:
    command = message.text.split()[0].split("@")[0]
    await message.answer(tr("unknown_command", command=command))



async def text(message: Message, tr: Translator) -> None:
    await message.answer(tr("text_hint"))



async def other(message: Message, tr: Translator) -> None:
    await message.answer(tr("unsupported_message"))



async def stale_button(query: CallbackQuery) -> None:
    await query.answer()


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="fallback")
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(text, F.text)
    router.message.register(other, F.chat.type == "private")
    router.callback_query.register(stale_button)
    return router

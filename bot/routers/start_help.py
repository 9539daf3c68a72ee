"""/start, /help, /restart and the /content, /style role commands."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot import flow
from bot.flow import NextRole
from bot.keyboards import main_keyboard
from bot.routers.common import chosen_size, server_info
from bot.services.jobs import JobQueue
from bot.services.results import ResultCache
from bot.services.runner import JobRunner
from bot.texts import Translator, variants


async def start(message: Message, tr: Translator, state: FSMContext) -> None:
    await state.set_state(None)
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(tr("start", name=name), reply_markup=main_keyboard(tr))



async def help_(message: Message, tr: Translator, state: FSMContext,
                runner: JobRunner) -> None:
    size = chosen_size(await state.get_data(), await server_info(runner.ts))
    await message.answer(tr("help", size=size), reply_markup=main_keyboard(tr))



async def restart(message: Message, tr: Translator, state: FSMContext,
                  queue: JobQueue, results: ResultCache) -> None:
    """Start over: forget the user's images, style and mix (the original bot's /restart);
    keep their settings (size, language, strength, colours)."""
    user_id = message.from_user.id
    await queue.cancel_anywhere(user_id)
    results.forget_user(user_id)
    if queue.coordination is not None:
        await queue.coordination.forget_results(user_id)
    await state.set_state(None)
    await state.update_data(content=None, results={}, **flow.new_style())
    await message.answer(tr("restart_done"))



async def next_content(message: Message, tr: Translator, state: FSMContext) -> None:
    await state.set_state(NextRole.content)
    await message.answer(tr("next_content"))



async def next_style(message: Message, tr: Translator, state: FSMContext) -> None:
    await state.set_state(NextRole.style)
    await message.answer(tr("next_style"))


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="start_help")
    router.message.register(start, CommandStart())
    router.message.register(help_, F.text.in_(variants("kb_help")))
    router.message.register(help_, Command("help"))
    router.message.register(restart, F.text.in_(variants("kb_restart")))
    router.message.register(restart, Command("restart"))
    router.message.register(next_content, F.text.in_(variants("kb_next_content")))
    router.message.register(next_content, Command("content"))
    router.message.register(next_style, F.text.in_(variants("kb_next_style")))
    router.message.register(next_style, Command("style"))
    return router

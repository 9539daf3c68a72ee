"""/size (remembered per user, sizes from the server) and /language."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.keyboards import LangCB, SizeCB, language_keyboard, main_keyboard, size_keyboard
from bot.routers.common import chosen_size, server_info, sizes_or_apology, spec_under
from bot.services.runner import JobRunner
from bot.texts import Translator, variants


async def size_menu(message: Message, tr: Translator, state: FSMContext,
                    runner: JobRunner) -> None:
    info = await sizes_or_apology(message, tr, runner.ts)
    if info is None:
        return
    current = chosen_size(await state.get_data(), info)
    await message.answer(tr("size_menu", size=current),
                         reply_markup=size_keyboard(list(info.sizes), current))



async def size_chosen(query: CallbackQuery, callback_data: SizeCB, tr: Translator,
                      state: FSMContext, runner: JobRunner) -> None:
    info = await server_info(runner.ts)
    size = callback_data.size
    if info is not None and size not in info.sizes:
        await query.answer(tr("size_unavailable", size=size), show_alert=True)
        return
    await state.update_data(size=size)
    await query.answer(tr("size_set", size=size))
    if query.message is None:
        return
    chat_id = query.message.chat.id
    if callback_data.run:  # a size button under a result: that result again at this size
        spec, why = await spec_under(await state.get_data(), callback_data.rid, runner.ts)
        if spec is None:
            await query.message.answer(tr(why))
            return
        spec["sizes"] = [size]
        await runner.start(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                           spec=spec)
    else:
        await query.message.edit_text(tr("size_set", size=size))



async def language_menu(message: Message, tr: Translator) -> None:
    await message.answer(tr("language_menu"), reply_markup=language_keyboard())



async def language_chosen(query: CallbackQuery, callback_data: LangCB,
                          state: FSMContext) -> None:
    tr = Translator(callback_data.lang)
    await state.update_data(lang=tr.lang)
    await query.answer()
    if query.message is not None:
        await query.message.edit_reply_markup(reply_markup=None)
        # a reply keyboard cannot be edited: a new message brings the translated one
        await query.message.answer(tr("language_set"), reply_markup=main_keyboard(tr))


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="settings")
    router.message.register(size_menu, F.text.in_(variants("kb_size")))
    router.message.register(size_menu, Command("size", "settings"))
    router.callback_query.register(size_chosen, SizeCB.filter())
    router.message.register(language_menu, Command("language", "lang"))
    router.callback_query.register(language_chosen, LangCB.filter())
    return router

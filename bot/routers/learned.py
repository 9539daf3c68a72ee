"""Learned styles: "Learn this style" under a result, and "My styles" (from the gallery or
/mystyles) to use, rename or delete them.

A user's styles live in the server's style store under their own owner
(:func:`bot.learnflow.owner_of`), asked afresh each time they are listed. Renaming waits for
the new name as a text message (the ``Renaming`` state); deleting asks first. Included
before the jobs router, so ``/cancel`` while renaming keeps the old name instead of looking
for a job.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot import flow, learnflow
from bot.keyboards import LearnCB, confirm_delete_keyboard, my_styles_keyboard
from bot.routers.common import run_from_state
from bot.services import torchserve as ts
from bot.services.learn_job import LearnJobs
from bot.services.learning import LearnClient
from bot.services.runner import JobRunner
from bot.texts import LANGUAGES, Translator, variants

log = logging.getLogger(__name__)


class Renaming(StatesGroup):
    name = State()  # waiting for the new name of FSM ``rename_from``


def _chat_id(query: CallbackQuery) -> int:
    return query.message.chat.id if query.message else query.from_user.id


def _server_trouble(exc: ts.TorchServeError) -> str:
    """The text key for a failed rename or delete (its value is the style's name)."""
    if exc.code == "unknown_preset":
        return "learned_gone"
    if exc.code == "name_exists":
        return "rename_taken"
    if exc.code == "store_not_writable":
        return "learn_store_not_writable"
    return "learned_server_down"


# ---------------------------------------------------------------- learn this style
async def learn(query: CallbackQuery, callback_data: LearnCB, tr: Translator,
                state: FSMContext, learn_jobs: LearnJobs) -> None:
    spec = ((await state.get_data()).get("results") or {}).get(callback_data.rid) or {}
    style = spec.get("style")
    if not learn_jobs.client.available:
        await query.answer(tr("learn_unavailable"), show_alert=True)
        return
    await query.answer()
    chat_id = _chat_id(query)
    if not style:
        await learn_jobs.runner.bot.send_message(chat_id, tr("role_expired"))
        return
    await learn_jobs.start(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                           style=style)


# ---------------------------------------------------------------- my styles
async def show_my_styles(bot: Bot, chat_id: int, user_id: int, tr: Translator,
                         client: LearnClient, edit: Message | None = None,
                         note: str = "") -> None:
    """The user's styles with a row of buttons each; ``edit`` replaces a text message."""
    try:
        mine = await client.my_styles(learnflow.owner_of(user_id))
    except ts.TorchServeError as exc:
        log.warning("my styles unavailable: %s", exc.kind)
        await bot.send_message(chat_id, tr("learned_server_down"))
        return
    if mine.names:
        text = tr("my_styles", count=len(mine.names), limit=mine.max_per_owner
                  or len(mine.names), names="\n".join(f"• {n}" for n in mine.names))
    else:
        text = tr("my_styles_empty")
    text = f"{note}\n\n{text}" if note else text
    markup = my_styles_keyboard(tr, mine.names)
    if edit is not None and edit.text is not None:
        try:
            await bot.edit_message_text(text=text, chat_id=chat_id,
                                        message_id=edit.message_id, reply_markup=markup)
            return
        except TelegramAPIError as exc:  # e.g. not modified: the same list pressed again
            log.debug("my styles not edited: %s", exc)
            return
    await bot.send_message(chat_id, text, reply_markup=markup)


async def my_styles_command(message: Message, bot: Bot, tr: Translator,
                            learn_jobs: LearnJobs) -> None:
    await show_my_styles(bot, message.chat.id, message.from_user.id, tr, learn_jobs.client)


async def my_styles_button(query: CallbackQuery, bot: Bot, tr: Translator,
                           learn_jobs: LearnJobs) -> None:
    await query.answer()
    await show_my_styles(bot, _chat_id(query), query.from_user.id, tr, learn_jobs.client,
                         edit=query.message if isinstance(query.message, Message) else None)


async def use(query: CallbackQuery, callback_data: LearnCB, tr: Translator,
              state: FSMContext, runner: JobRunner, learn_jobs: LearnJobs) -> None:
    """Stylize the current photo with a learned style (it becomes the current style)."""
    name, owner = callback_data.name, learnflow.owner_of(query.from_user.id)
    chat_id = _chat_id(query)
    try:
        mine = await learn_jobs.client.my_styles(owner)
    except ts.TorchServeError:
        await query.answer(tr("learned_server_down"), show_alert=True)
        return
    if name not in mine.names:
        await query.answer()
        await runner.bot.send_message(chat_id, tr("learned_gone", name=name))
        return
    await query.answer(f"✅ {name}")
    # the new current style: it replaces the old one and ends any mix with it
    await state.update_data(owner=owner, **flow.new_style(preset=name))
    if flow.missing(await state.get_data()) is None:
        await run_from_state(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                             runner=runner)
    else:
        await runner.bot.send_message(chat_id, tr("got_preset", name=name))


# ---------------------------------------------------------------- rename
async def rename_start(query: CallbackQuery, callback_data: LearnCB, tr: Translator,
                       state: FSMContext) -> None:
    await query.answer()
    await state.set_state(Renaming.name)
    await state.update_data(rename_from=callback_data.name)
    if query.message is not None:
        await query.message.answer(tr("rename_prompt", name=callback_data.name))


async def rename_text(message: Message, bot: Bot, tr: Translator, state: FSMContext,
                      learn_jobs: LearnJobs) -> None:
    data = await state.get_data()
    old, new = data.get("rename_from") or "", (message.text or "").strip()
    if not learnflow.valid_name(new):
        shown = new if len(new) <= 60 else new[:57] + "…"
        await message.answer(tr("rename_invalid", text=shown))
        return  # still waiting for a name
    owner = learnflow.owner_of(message.from_user.id)
    try:
        await learn_jobs.client.rename(old, new, owner)
    except ts.TorchServeError as exc:
        key = _server_trouble(exc)
        if key == "rename_taken":
            await message.answer(tr(key, name=new))
            return  # still waiting for a name
        await state.set_state(None)
        await message.answer(tr(key, name=old))
        return
    await state.set_state(None)
    update = {"rename_from": None}
    if data.get("preset") == old and data.get("owner") == owner:
        update["preset"] = new  # the current style follows its new name
    if (data.get("mix") or "") == old and data.get("owner") == owner:
        update["mix"] = new
    await state.update_data(update)
    await show_my_styles(bot, message.chat.id, message.from_user.id, tr, learn_jobs.client,
                         note=tr("rename_done", old=old, name=new))


async def rename_cancel(message: Message, tr: Translator, state: FSMContext) -> None:
    name = (await state.get_data()).get("rename_from") or ""
    await state.set_state(None)
    await state.update_data(rename_from=None)
    await message.answer(tr("rename_cancelled", name=name))


# ---------------------------------------------------------------- delete
async def delete(query: CallbackQuery, callback_data: LearnCB, bot: Bot,
                 tr: Translator) -> None:
    """Ask first: a deleted style cannot be brought back."""
    await query.answer()
    text = tr("delete_confirm", name=callback_data.name)
    markup = confirm_delete_keyboard(tr, callback_data.name)
    message = query.message if isinstance(query.message, Message) else None
    if message is not None and message.text is not None:
        try:
            await message.edit_text(text, reply_markup=markup)
            return
        except TelegramAPIError as exc:
            log.debug("delete question not edited in: %s", exc)
    await bot.send_message(_chat_id(query), text, reply_markup=markup)


async def forget(query: CallbackQuery, callback_data: LearnCB, bot: Bot, tr: Translator,
                 state: FSMContext, learn_jobs: LearnJobs) -> None:
    name, owner = callback_data.name, learnflow.owner_of(query.from_user.id)
    try:
        await learn_jobs.client.forget(name, owner)
    except ts.TorchServeError as exc:
        key = _server_trouble(exc)
        await query.answer()
        await bot.send_message(_chat_id(query), tr(key, name=name))
        return
    await query.answer(tr("delete_done", name=name))
    data = await state.get_data()
    if data.get("owner") == owner and name in (data.get("preset"), data.get("mix")):
        await state.update_data(preset=None if data.get("preset") == name
                                else data.get("preset"),
                                mix=None if data.get("mix") == name else data.get("mix"))
    await show_my_styles(bot, _chat_id(query), query.from_user.id, tr, learn_jobs.client,
                         edit=query.message if isinstance(query.message, Message) else None,
                         note=tr("delete_done", name=name))


def _keyboard_texts() -> set[str]:
    """Reply-keyboard buttons in every language: they keep their meaning while renaming."""
    return {text for module in LANGUAGES.values() for key, text in module.TEXTS.items()
            if key.startswith("kb_")}


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="learned")
    router.callback_query.register(learn, LearnCB.filter(F.action == "learn"))
    router.callback_query.register(my_styles_button, LearnCB.filter(F.action == "list"))
    router.callback_query.register(use, LearnCB.filter(F.action == "use"))
    router.callback_query.register(rename_start, LearnCB.filter(F.action == "rename"))
    router.callback_query.register(delete, LearnCB.filter(F.action == "delete"))
    router.callback_query.register(forget, LearnCB.filter(F.action == "forget"))
    router.message.register(my_styles_command, Command("mystyles"))
    router.message.register(my_styles_command, F.text.in_(variants("kb_my_styles")))
    router.message.register(rename_cancel, StateFilter(Renaming.name), Command("cancel"))
    router.message.register(rename_text, StateFilter(Renaming.name), F.text,
                            ~F.text.startswith("/"), ~F.text.in_(_keyboard_texts()))
    return router

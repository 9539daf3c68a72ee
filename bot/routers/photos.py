"""Image intake: photos and image documents, single or as an album, and their roles."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot import flow
from bot.config import Settings
from bot.keyboards import RoleCB, ask_role_keyboard, upload_keyboard
from bot.routers.common import run_from_state
from bot.routers.presets import PreviewIds, show_gallery
from bot.services.runner import JobRunner
from bot.texts import Translator, caption_role


async def on_image(message: Message, tr: Translator, state: FSMContext, settings: Settings,
                   runner: JobRunner, previews: PreviewIds,
                   album: list[Message] | None = None) -> None:
    if album and len(album) > 1:
        await _album(message, album, tr, state, settings, runner)
        return
    ref = flow.image_ref(message, settings.max_file_bytes)
    if isinstance(ref, flow.Rejection):
        await message.answer(tr(ref.key, **ref.values))
        return
    data = await state.get_data()
    mode = await state.get_state()
    next_role = {flow.NextRole.content.state: "content",
                 flow.NextRole.style.state: "style"}.get(mode)
    role = flow.decide_role(caption_role(message.caption), next_role, data)
    if role == "ask":
        await state.update_data(pending=ref)
        await message.answer(tr("ask_role"), reply_markup=ask_role_keyboard(tr))
        return
    if next_role:
        await state.set_state(None)
    await _assign(message, role, ref, tr, state, runner, previews, guessed=role != next_role
                  and caption_role(message.caption) is None)



async def on_role(query: CallbackQuery, callback_data: RoleCB, tr: Translator,
                  state: FSMContext, runner: JobRunner, previews: PreviewIds) -> None:
    data = await state.get_data()
    role = callback_data.role
    if callback_data.mode == "ask":
        ref = data.get("pending")
    else:  # swap: move the guessed upload to the other role
        other = "content" if role == "style" else "style"
        ref = data.get(other)
        if ref and ref.get("uid", "")[:40] == callback_data.uid:
            await state.update_data({other: None})
        else:
            ref = None
    await query.answer()
    if query.message is None:
        return
    if not ref:
        await query.message.answer(tr("role_expired"))
        return
    await query.message.edit_reply_markup(reply_markup=None)
    await _assign(query.message, role, ref, tr, state, runner, previews, guessed=False,
                  user_id=query.from_user.id)


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="photos")
    router.message.register(on_image, F.photo | F.document)
    router.callback_query.register(on_role, RoleCB.filter())
    return router


async def _assign(message: Message, role: str, ref: dict[str, Any], tr: Translator,
                  state: FSMContext, runner: JobRunner, previews: PreviewIds, *, guessed: bool,
                  user_id: int | None = None) -> None:
    """Store ``ref`` as ``role``; start the job when both images are known, otherwise say
    what was received (with a button to flip a guessed role) and, for a photo, show the
    gallery at once: photo -> style -> result is the short path."""
    data = await state.get_data()
    await state.update_data(flow.assign(data, role, ref))
    data = await state.get_data()
    user_id = user_id or message.from_user.id
    if flow.missing(data) is None:
        await run_from_state(chat_id=message.chat.id, user_id=user_id, tr=tr, state=state,
                             runner=runner, say=message.answer)
        return
    markup = upload_keyboard(tr, role, ref.get("uid", "")) if guessed else None
    await message.answer(tr("got_content" if role == "content" else "got_style"),
                         reply_markup=markup)
    if role == "content":  # the gallery right away (it ends in "⭐ My styles")
        await show_gallery(runner.bot, message.chat.id, tr, runner.ts, previews)


async def _album(message: Message, album: list[Message], tr: Translator, state: FSMContext,
                 settings: Settings, runner: JobRunner) -> None:
    """Two images = content then style (captions may say otherwise)."""
    refs = [flow.image_ref(m, settings.max_file_bytes) for m in album]
    for ref in refs:
        if isinstance(ref, flow.Rejection):
            await message.answer(tr(ref.key, **ref.values))
            return
    if len(refs) != 2 or any(r is None for r in refs):
        await message.answer(tr("album_bad", count=len(album)))
        return
    content_i, style_i = flow.album_roles([m.caption for m in album], caption_role)
    await state.set_state(None)
    await state.update_data(content=refs[content_i], **flow.new_style(style=refs[style_i]))
    await message.answer(tr("got_album"))
    await run_from_state(chat_id=message.chat.id, user_id=message.from_user.id, tr=tr,
                         state=state, runner=runner, say=message.answer)

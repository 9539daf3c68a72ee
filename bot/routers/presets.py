"""The presets gallery: one photo message (a preset's preview) paged in place with
``editMessageMedia``, a "use" button, and a page of names to jump to.

The list comes from the server (cached by the client); a preview is uploaded to Telegram once
and then re-sent by its ``file_id``.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InputMediaPhoto, Message

from bot import flow
from bot.keyboards import PresetCB, gallery_keyboard
from bot.placeholder import NO_PREVIEW_JPEG
from bot.routers.common import spec_under
from bot.services import torchserve as ts
from bot.services.runner import JobRunner
from bot.texts import Translator, variants

log = logging.getLogger(__name__)


class PreviewIds:
    """Telegram file ids of previews already uploaded, by preset name."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}


async def _photo(client: ts.TorchServeClient, previews: PreviewIds, preset: ts.Preset,
                 ) -> tuple[str | BufferedInputFile, bool]:
    """The preview to show (a file id or bytes) and whether it is a real preview."""
    if preset.name in previews.ids:
        return previews.ids[preset.name], True
    if preset.preview:
        try:
            return BufferedInputFile(await client.preview(preset.name),
                                     f"{preset.name}.jpg"), True
        except ts.TorchServeError as exc:
            log.warning("preview of %r unavailable: %s", preset.name, exc.kind)
    return BufferedInputFile(NO_PREVIEW_JPEG, "no_preview.jpg"), False


async def show_gallery(bot: Bot, chat_id: int, tr: Translator, client: ts.TorchServeClient,
                       previews: PreviewIds, index: int = 0, edit: Message | None = None,
                       rid: str = "", mode: str = "") -> None:
    """Show (or page in place, ``edit``) the gallery; ``rid`` and ``mode`` go with its
    buttons (the result it was opened under, "mix")."""
    try:
        info = await client.server_info()
    except ts.TorchServeError:
        await bot.send_message(chat_id, tr("presets_unavailable"))
        return
    if not info.presets:
        await bot.send_message(chat_id, tr("presets_empty"))
        return
    names = [p.name for p in info.presets]
    index %= len(names)
    preset = info.presets[index]
    photo, real = await _photo(client, previews, preset)
    caption = tr("preset_caption", name=tr.title(preset.name), index=index + 1,
                 total=len(names))
    if not real:
        caption += "\n" + tr("preset_no_preview")
    markup = gallery_keyboard(tr, names, index, rid, mode)
    sent: Message | bool
    if edit is not None:
        sent = await bot.edit_message_media(
            media=InputMediaPhoto(media=photo, caption=caption), chat_id=chat_id,
            message_id=edit.message_id, reply_markup=markup)
    else:
        sent = await bot.send_photo(chat_id, photo, caption=caption, reply_markup=markup)
    if real and isinstance(sent, Message) and sent.photo:
        previews.ids[preset.name] = sent.photo[-1].file_id


async def presets(message: Message, bot: Bot, tr: Translator, runner: JobRunner,
                  previews: PreviewIds) -> None:
    await show_gallery(bot, message.chat.id, tr, runner.ts, previews)



async def page(query: CallbackQuery, callback_data: PresetCB, bot: Bot, tr: Translator,
               runner: JobRunner, previews: PreviewIds) -> None:
    await query.answer()
    if query.message is None:
        return
    in_gallery = callback_data.action == "show" and bool(query.message.photo)
    try:
        await show_gallery(bot, query.message.chat.id, tr, runner.ts, previews,
                           callback_data.index, query.message if in_gallery else None,
                           rid=callback_data.rid, mode=callback_data.mode)
    except TelegramAPIError as exc:  # e.g. the same page pressed twice: not modified
        log.debug("gallery page not shown: %s", exc)



async def use(query: CallbackQuery, callback_data: PresetCB, tr: Translator,
              state: FSMContext, runner: JobRunner) -> None:
    try:
        info = await runner.ts.server_info()
    except ts.TorchServeError:
        await query.answer(tr("presets_unavailable"), show_alert=True)
        return
    names = [p.name for p in info.presets]
    name = callback_data.name
    if not name and 0 <= callback_data.index < len(names):
        name = names[callback_data.index]
    if name not in names:
        await query.answer()
        if query.message is not None:
            await query.message.answer(tr("preset_gone"))
        return
    await query.answer(f"✅ {tr.title(name)}")
    chat_id = query.message.chat.id if query.message else query.from_user.id
    data = await state.get_data()
    mixing = callback_data.mode == "mix"
    if not callback_data.rid and not data.get("content"):
        # no photo yet: remember the choice and say what is missing
        await state.update_data({"mix": name} if mixing else flow.new_style(preset=name))
        await runner.bot.send_message(chat_id, tr("got_mix" if mixing else "got_preset",
                                                  name=tr.title(name)))
        return
    if not callback_data.rid and not mixing:  # the current photo in this style
        data = {**data, **flow.new_style(preset=name)}
    spec, why = await spec_under(data, callback_data.rid, runner.ts)
    if spec is None:
        await runner.bot.send_message(chat_id, tr(why))
        return
    if mixing:  # "mix with another style": this preset joins that result's style
        spec["controls"]["mix"] = name
        update = {"style": spec.get("style"), "preset": spec.get("preset"), "pending": None,
                  "mix": name}
    else:  # a new style replaces the old one and ends any mix with it
        spec.update(preset=name, style=None)
        spec["controls"]["mix"] = None
        update = flow.new_style(preset=name)
    spec.pop("sheet", None)
    spec.pop("rid", None)
    if not callback_data.rid or flow.is_current(data, spec):
        await state.update_data(update)  # the current photo's style: the next photo's too
    await runner.start(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                       spec=spec)


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="presets")
    router.message.register(presets, F.text.in_(variants("kb_presets")))
    router.message.register(presets, Command("presets"))
    router.callback_query.register(page, PresetCB.filter(F.action.in_({"open", "show"})))
    router.callback_query.register(use, PresetCB.filter(F.action == "use"))
    return router

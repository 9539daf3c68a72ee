"""The style-control buttons under a result: strength, colours, brush, mix, every style.

Each button carries its result's id and re-runs *that* result's images and style (kept in the
user's bounded ``results`` history), not whatever was uploaded since: no new upload. The
strength, colours and brush chosen are also remembered for the user's next results (FSM data,
so on any replica with Redis).
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot import flow
from bot.controls import BRUSHES, STRENGTHS
from bot.keyboards import ControlCB
from bot.routers.common import spec_under
from bot.routers.presets import PreviewIds, show_gallery
from bot.services.runner import JobRunner
from bot.texts import Translator

log = logging.getLogger(__name__)

SHEET_SIZE = 256  # cell size of the contact sheet


def _chat_id(query: CallbackQuery) -> int:
    return query.message.chat.id if query.message else query.from_user.id


async def set_control(query: CallbackQuery, callback_data: ControlCB, tr: Translator,
                      state: FSMContext, runner: JobRunner) -> None:
    """Change one control of the result the button sits under and make it again."""
    action, value = callback_data.action, callback_data.value
    if action == "strength" and value.isdigit() and int(value) in STRENGTHS:
        change = {"strength": int(value)}
        note = tr("ctl_strength_set", pct=int(value))
    elif action == "colors" and value in ("on", "off"):
        change = {"keep_colors": value == "on"}
        note = tr("ctl_colors_on" if value == "on" else "ctl_colors_off")
    elif action == "brush" and value in BRUSHES:
        change = {"brush": value}
        note = tr("ctl_brush_set", brush=tr(f"brush_{value}"))
    else:
        await query.answer()
        return
    chat_id = _chat_id(query)
    spec, why = await spec_under(await state.get_data(), callback_data.rid, runner.ts)
    await state.update_data(change)  # a preference: the next results keep it too
    await query.answer(note)
    if spec is None:
        await runner.bot.send_message(chat_id, tr(why))
        return
    spec["controls"].update(change)
    await runner.start(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                       spec=spec)


async def mix(query: CallbackQuery, callback_data: ControlCB, bot: Bot, tr: Translator,
              runner: JobRunner, previews: PreviewIds) -> None:
    """A gallery whose "use" buttons mix a preset into this result's style. Nothing is
    stored: leaving it without a pick changes nothing."""
    await query.answer()
    chat_id = _chat_id(query)
    await bot.send_message(chat_id, tr("mix_pick"))
    await show_gallery(bot, chat_id, tr, runner.ts, previews, rid=callback_data.rid,
                       mode="mix")


async def sheet(query: CallbackQuery, callback_data: ControlCB, tr: Translator,
                state: FSMContext, runner: JobRunner) -> None:
    """This result's photo in every preset, with a button per preset to use it."""
    await query.answer()
    chat_id = _chat_id(query)
    spec, why = await spec_under(await state.get_data(), callback_data.rid, runner.ts)
    if spec is None:
        await runner.bot.send_message(chat_id, tr(why))
        return
    await runner.start(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                       spec=flow.sheet_spec(spec, SHEET_SIZE, callback_data.rid))


async def more(query: CallbackQuery, callback_data: ControlCB, tr: Translator,
               state: FSMContext, runner: JobRunner) -> None:
    """"More" / "Back": swap the result's buttons in place (no new message, no re-run), so
    the first view stays short and the rest is one tap away."""
    spec = flow.result_spec(await state.get_data(), callback_data.rid)
    if spec is None or query.message is None:
        await query.answer(tr("result_expired"), show_alert=True)
        return
    await query.answer()
    markup = await runner.result_markup(tr, callback_data.rid, spec,
                                        more=callback_data.action == "more")
    try:
        await query.message.edit_reply_markup(reply_markup=markup)
    except TelegramAPIError as exc:  # e.g. pressed twice: not modified
        log.debug("result buttons not swapped: %s", exc)


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="controls")
    router.callback_query.register(
        set_control, ControlCB.filter(F.action.in_({"strength", "colors", "brush"})))
    router.callback_query.register(mix, ControlCB.filter(F.action == "mix"))
    router.callback_query.register(sheet, ControlCB.filter(F.action == "sheet"))
    router.callback_query.register(more, ControlCB.filter(F.action.in_({"more", "less"})))
    return router

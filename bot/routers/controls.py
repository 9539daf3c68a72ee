"""The style-control buttons under a result: strength, colours, brush, mix, every style.

Each choice is stored in the user's FSM data (so it is remembered for their next results, on
any replica with Redis) and re-runs the job from the images already known: no new upload.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot import flow
from bot.controls import BRUSHES, STRENGTHS
from bot.keyboards import ControlCB
from bot.routers.common import run_from_state
from bot.routers.presets import PreviewIds, show_gallery
from bot.services.runner import JobRunner
from bot.texts import Translator

SHEET_SIZE = 256  # cell size of the contact sheet


async def set_control(query: CallbackQuery, callback_data: ControlCB, tr: Translator,
                      state: FSMContext, runner: JobRunner) -> None:
    action, value = callback_data.action, callback_data.value
    if action == "strength" and value.isdigit() and int(value) in STRENGTHS:
        await state.update_data(strength=int(value))
        note = tr("ctl_strength_set", pct=int(value))
    elif action == "colors" and value in ("on", "off"):
        await state.update_data(keep_colors=value == "on")
        note = tr("ctl_colors_on" if value == "on" else "ctl_colors_off")
    elif action == "brush" and value in BRUSHES:
        await state.update_data(brush=value)
        note = tr("ctl_brush_set", brush=tr(f"brush_{value}"))
    else:
        await query.answer()
        return
    await query.answer(note)
    chat_id = query.message.chat.id if query.message else query.from_user.id
    await run_from_state(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                         runner=runner, say=lambda text: runner.bot.send_message(chat_id,
                                                                                text))



async def mix(query: CallbackQuery, bot: Bot, tr: Translator, state: FSMContext,
              runner: JobRunner, previews: PreviewIds) -> None:
    """The next preset picked in the gallery is mixed with the current style."""
    await state.update_data(mixing=True)
    await query.answer()
    chat_id = query.message.chat.id if query.message else query.from_user.id
    await bot.send_message(chat_id, tr("mix_pick"))
    await show_gallery(bot, chat_id, tr, runner.ts, previews)



async def sheet(query: CallbackQuery, tr: Translator, state: FSMContext,
                runner: JobRunner) -> None:
    await query.answer()
    chat_id = query.message.chat.id if query.message else query.from_user.id
    data = await state.get_data()
    if not data.get("content"):
        await runner.bot.send_message(chat_id, tr("need_content"))
        return
    await runner.start(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                       spec=flow.sheet_spec(data, SHEET_SIZE))


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="controls")
    router.callback_query.register(
        set_control, ControlCB.filter(F.action.in_({"strength", "colors", "brush"})))
    router.callback_query.register(mix, ControlCB.filter(F.action == "mix"))
    router.callback_query.register(sheet, ControlCB.filter(F.action == "sheet"))
    return router

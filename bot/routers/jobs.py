"""Running, re-running and cancelling jobs: /result, /tests, /cancel and the result buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.keyboards import JobCB
from bot.routers.common import run_from_state, sizes_or_apology
from bot.services.jobs import JobQueue
from bot.services.runner import JobRunner
from bot.texts import Translator, variants


async def result(message: Message, tr: Translator, state: FSMContext,
                 runner: JobRunner) -> None:
    await run_from_state(chat_id=message.chat.id, user_id=message.from_user.id, tr=tr,
                         state=state, runner=runner, say=message.answer)



async def tests(message: Message, tr: Translator, state: FSMContext,
                runner: JobRunner) -> None:
    """The original bot's /tests: the same result at every size the server offers."""
    info = await sizes_or_apology(message, tr, runner.ts)
    if info is None:
        return
    await run_from_state(chat_id=message.chat.id, user_id=message.from_user.id, tr=tr,
                         state=state, runner=runner, sizes=list(info.sizes),
                         say=message.answer)



async def cancel(message: Message, tr: Translator, queue: JobQueue,
                 state: FSMContext) -> None:
    await state.set_state(None)
    # the replica running the job (this one or another) tells the user
    if not await queue.cancel_anywhere(message.from_user.id):
        await message.answer(tr("nothing_to_cancel"))



async def cancel_button(query: CallbackQuery, tr: Translator, queue: JobQueue) -> None:
    cancelled = await queue.cancel_anywhere(query.from_user.id)
    await query.answer(tr("cancelled") if cancelled else tr("nothing_to_cancel"))



async def full_quality(query: CallbackQuery, callback_data: JobCB, tr: Translator,
                       state: FSMContext, runner: JobRunner) -> None:
    await query.answer()
    chat_id = query.message.chat.id if query.message else query.from_user.id
    if await runner.send_full(chat_id, query.from_user.id, tr, callback_data.rid):
        return
    # evicted from the cache: make it again from the spec that made it
    spec = ((await state.get_data()).get("results") or {}).get(callback_data.rid)
    if spec is None:
        await runner.bot.send_message(chat_id, tr("role_expired"))
        return
    await runner.bot.send_message(chat_id, tr("result_gone"))
    await runner.start(chat_id=chat_id, user_id=query.from_user.id, tr=tr, state=state,
                       spec={**spec, "document": True})


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="jobs")
    router.message.register(result, F.text.in_(variants("kb_run")))
    router.message.register(result, Command("result", "run"))
    router.message.register(tests, Command("tests"))
    router.message.register(cancel, F.text.in_(variants("kb_cancel")))
    router.message.register(cancel, Command("cancel"))
    router.callback_query.register(cancel_button, JobCB.filter(F.action == "cancel"))
    router.callback_query.register(full_quality, JobCB.filter(F.action == "full"))
    return router

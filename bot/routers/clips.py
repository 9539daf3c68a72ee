"""Clip intake: GIFs, Telegram animations, videos and video notes become the content.

Included before the photo router: Telegram sets ``document`` on an animation too. The clip
limits (from the server) are checked against what Telegram says about the clip and explained
before any work starts.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot import clipflow, flow
from bot.config import Settings
from bot.keyboards import presets_shortcut
from bot.routers.common import run_from_state, server_info
from bot.services.runner import JobRunner
from bot.texts import Translator


async def on_clip(message: Message, tr: Translator, state: FSMContext, settings: Settings,
                  runner: JobRunner) -> None:
    ref = clipflow.clip_ref(message, settings.max_file_bytes)
    if ref is None:
        return
    if isinstance(ref, flow.Rejection):
        await message.answer(tr(ref.key, **ref.values))
        return
    info = await server_info(runner.ts)
    limits = clipflow.limits_of(info.extra if info else None)
    refusal = clipflow.over_limits(ref, limits)
    if refusal is not None:
        await message.answer(tr(refusal.key, **refusal.values))
        return
    await state.set_state(None)
    await state.update_data(flow.assign(await state.get_data(), "content", ref))
    data = await state.get_data()
    values = clipflow.limit_values(limits)
    frames = clipflow.expected_frames(ref, limits)
    ready = flow.missing(data) is None
    await message.answer(tr("got_clip" if ready else "got_clip_need_style", frames=frames,
                            **values),
                         reply_markup=None if ready else presets_shortcut(tr))
    if ready:
        await run_from_state(chat_id=message.chat.id, user_id=message.from_user.id, tr=tr,
                             state=state, runner=runner, say=message.answer)


def create_router() -> Router:
    """A fresh router with this feature's handlers (a Router joins one Dispatcher)."""
    router = Router(name="clips")
    router.message.register(on_clip, F.animation | F.video | F.video_note)
    router.message.register(on_clip, F.func(clipflow.is_clip_document))
    return router

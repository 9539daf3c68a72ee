"""Helpers shared by the routers: the user's size and starting a job from their state."""

from __future__ import annotations

import logging
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot import flow
from bot.services import torchserve as ts
from bot.services.runner import JobRunner
from bot.texts import Translator

log = logging.getLogger(__name__)

FALLBACK_SIZE = 512  # only when the server cannot be asked and the user chose nothing


async def server_info(client: ts.TorchServeClient) -> ts.ServerInfo | None:
    try:
        return await client.server_info()
    except ts.TorchServeError as exc:
        log.warning("no server info: %s", exc.kind)
        return None


async def sizes_or_apology(message: Message, tr: Translator,
                           client: ts.TorchServeClient) -> ts.ServerInfo | None:
    """The server's info for a command that lists sizes; None after telling the user the
    server cannot be asked."""
    info = await server_info(client)
    if info is None:
        await message.answer(tr("sizes_unavailable"))
    return info


def chosen_size(data: dict[str, Any], info: ts.ServerInfo | None) -> int:
    """The user's size if the server still offers it, else the server's default."""
    size = data.get("size")
    if info is None:
        return int(size or FALLBACK_SIZE)
    if size and int(size) in info.sizes:
        return int(size)
    return info.default_size


async def spec_under(data: dict[str, Any], rid: str, client: ts.TorchServeClient
                     ) -> tuple[dict[str, Any] | None, str | None]:
    """(the spec a button acts on, None) or (None, the text key saying why there is none).

    A button under a result carries its ``rid``: it acts on that result's images and style,
    whatever was uploaded since. Buttons without one (sent before results carried it) act on
    the current images, as they used to."""
    if rid:
        spec = flow.result_spec(data, rid)
        return (spec, None) if spec is not None else (None, "result_expired")
    need = flow.missing(data)
    if need:
        return None, need
    return flow.job_spec(data, [chosen_size(data, await server_info(client))]), None


async def run_from_state(*, chat_id: int, user_id: int, tr: Translator, state: FSMContext,
                         runner: JobRunner, sizes: list[int] | None = None,
                         document: bool = False, say=None) -> bool:
    """Start a job with the user's current images; tells them what is missing otherwise.
    ``say`` sends a text to the user (the handler's ``message.answer``)."""
    data = await state.get_data()
    need = flow.missing(data)
    if need:
        if say is not None:
            await say(tr(need))
        return False
    if sizes is None:
        sizes = [chosen_size(data, await server_info(runner.ts))]
    spec = flow.job_spec(data, sizes, document)
    return await runner.start(chat_id=chat_id, user_id=user_id, tr=tr, state=state,
                              spec=spec) is not None

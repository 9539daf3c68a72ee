"""Fixtures of the bot tests: the fake Bot API, a fake TorchServe for unit/component tests,
and an in-process bot wired to them (the end-to-end tests run the real process instead)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import Update
from bot_helpers import TOKEN, bot_env

from bot.app import Services, create_bot, create_dispatcher, create_services
from bot.config import Settings, load_settings
from fakes.telegram import FakeTelegram, FakeUser
from fakes.torchserve import FakeTorchServe


@pytest.fixture
async def tg():
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def fts():
    server = FakeTorchServe()
    await server.start()
    yield server
    await server.close()


@dataclass
class InProcessBot:
    """The bot's real Dispatcher and services in the test's event loop."""

    settings: Settings
    bot: Bot
    dp: Dispatcher
    services: Services
    tg: FakeTelegram
    polling: asyncio.Task | None = None

    async def feed(self, user: FakeUser, **update) -> None:
        """Dispatch one update directly (``Dispatcher.feed_update``, no polling)."""
        data = {"update_id": 1, **update}
        await self.dp.feed_update(self.bot, Update.model_validate(data,
                                                                  context={"bot": self.bot}))

    async def start_polling(self) -> None:
        self.polling = asyncio.create_task(self.dp.start_polling(
            self.bot, handle_signals=False, polling_timeout=self.settings.polling_timeout))
        await self.tg.polling_started()

    async def stop(self) -> None:
        if self.polling is not None:
            await self.dp.stop_polling()
            await self.polling
        else:
            await self.dp.emit_shutdown(bot=self.bot)
            await self.bot.session.close()


@pytest.fixture
async def make_bot(tg, fts):
    """``await make_bot(polling=False, storage=None, **env)`` -> an :class:`InProcessBot`
    (``storage``: the FSM storage, memory by default)."""
    made: list[InProcessBot] = []

    async def factory(polling: bool = False, storage: BaseStorage | None = None,
                      **env: str) -> InProcessBot:
        settings = load_settings(bot_env(tg.api_url, fts.url, **env), dotenv=None)
        bot = create_bot(settings)
        services = create_services(settings, bot)
        dp = create_dispatcher(settings, services, storage)
        harness = InProcessBot(settings, bot, dp, services, tg)
        made.append(harness)
        if polling:
            await harness.start_polling()
        else:
            await dp.emit_startup(bot=bot)
        return harness

    yield factory
    for harness in made:
        await harness.stop()

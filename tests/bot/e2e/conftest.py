"""End-to-end fixtures: the real TorchServe of the integration tests (session-scoped, tiny
weights), a controllable proxy in front of it, and the real bot process."""

from __future__ import annotations

import pytest
from bot_helpers import TOKEN
from integration.servers import torchserve  # noqa: F401 (the shared fixture module)
from ts_proxy import TorchServeProxy

from fakes.bot_process import BotProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxy(torchserve):  # noqa: F811 (the imported fixture)
    p = TorchServeProxy(torchserve.inference)
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def run_bot(tg, proxy, torchserve, tmp_path):  # noqa: F811
    """``await run_bot(**env)`` starts ``python -m bot`` against the fake Bot API and the
    proxy; at the end it is stopped with SIGTERM, must exit cleanly and must not have
    logged its token."""
    started: list[BotProcess] = []

    async def start(**env: str) -> BotProcess:
        full = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.api_url, "TS_URL": proxy.url,
                "TS_KEY_FILE": str(torchserve.key_file), "TS_RETRIES": "2",
                "TS_RETRY_DELAY": "0.2", "TS_TIMEOUT": "120", "ALBUM_DELAY": "0.4",
                "STATUS_INTERVAL": "0.5", "POLLING_TIMEOUT": "5", "SHUTDOWN_GRACE": "5",
                "LOG_LEVEL": "DEBUG", **env}
        bot = BotProcess(full, tmp_path / f"bot{len(started)}.log")
        started.append(bot)
        await bot.start_polling(tg, 60)
        return bot

    yield start
    for bot in started:
        await bot.stop_cleanly(TOKEN)

"""``python -m bot``: start the Telegram bot (polling, or webhook mode when WEBHOOK_URL is set)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from bot.config import ConfigError, load_settings
from bot.logging import setup_logging

log = logging.getLogger("bot")


def main() -> int:
    try:
        # BOT_DOTENV names another .env file, or "" for none (the tests use that)
        settings = load_settings(dotenv=os.environ.get("BOT_DOTENV", ".env"))
    except ConfigError as exc:
        print(f"bot: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_json, settings.secrets())
    from bot.app import run_polling, run_webhook  # after logging: aiogram logs at import

    mode = "webhook" if settings.webhook_enabled else "polling"
    log.info("starting the bot (%s); TorchServe at %s, model %s%s", mode, settings.ts_url,
             settings.ts_model, f"/{settings.ts_model_version}" if settings.ts_model_version
             else "")
    try:
        asyncio.run(run_webhook(settings) if settings.webhook_enabled else run_polling(settings))
    except KeyboardInterrupt:
        pass
    except Exception:
        # the formatter scrubs the token from the traceback (URLs contain it)
        log.exception("the bot stopped with an error")
        return 1
    log.info("bot stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

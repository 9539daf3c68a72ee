"""Helpers shared by the bot tests: test images (from :mod:`fakes.images`) and the bot's test
environment."""

from __future__ import annotations

import io

from PIL import Image

from fakes.images import jpeg, png
from fakes.telegram import TOKEN

__all__ = ["TOKEN", "bot_env", "dims", "jpeg", "png"]

def dims(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def bot_env(api_url: str, ts_url: str, **overrides: str) -> dict[str, str]:
    env = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url, "TS_URL": ts_url,
           "TS_INFERENCE_KEY": "inference-key", "TS_RETRIES": "3", "TS_RETRY_DELAY": "0.05",
           "ALBUM_DELAY": "0.3", "STATUS_INTERVAL": "0", "POLLING_TIMEOUT": "2",
           "SHUTDOWN_GRACE": "5", "LOG_LEVEL": "INFO"}
    env.update(overrides)
    return env

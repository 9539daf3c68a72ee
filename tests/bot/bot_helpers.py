"""Helpers shared by the bot tests: test images and the bot's test environment."""

from __future__ import annotations

import io

from PIL import Image

TOKEN = "123456789:TEST-token-for-the-fake-api"


def jpeg(width: int, height: int, color=(40, 120, 200)) -> bytes:
    img = Image.new("RGB", (width, height), color)
    for x in range(0, width, 8):  # some structure so the JPEG is not trivial
        img.putpixel((x, x * height // max(width, 1)), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png(width: int, height: int, color=(200, 60, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


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

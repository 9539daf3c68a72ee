"""A fake Telegram Bot API server (aiohttp) for running the real, unmodified bot in tests.

It implements the methods the bot uses with Telegram's semantics where they matter:
``getUpdates`` long-polls (waits up to ``timeout`` for an update, confirms by ``offset``, and a
newer request terminates an older one with 409 as Telegram does), uploads are multipart and
their bytes are kept, files have ids and are downloaded from ``/file/bot<token>/<path>``,
``getFile`` refuses files over 20 MB, uploads over Telegram's limits (10 MB for a photo,
50 MB otherwise) are refused, ``flood`` answers a method's next calls with 429 and a
``retry_after`` as Telegram's flood control does, edits of unknown messages or with
unchanged content fail like Telegram's, and a webhook (``setWebhook``) receives updates by
POST with the secret token header.

Tests drive it through :class:`FakeUser`: send text, commands, photos, documents and albums,
press inline buttons, and await the bot's messages and edits (no sleeps: every wait is an
event with a timeout).

    tg = FakeTelegram()
    await tg.start()                  # tg.api_url -> TELEGRAM_API_URL for the bot
    alice = tg.user(1001, "Alice", "en")
    await alice.send_photo(jpeg_bytes)
    gallery = await alice.expect(lambda m: m.photo is not None)   # shown after the photo
    await alice.press(gallery, "Use")
"""

from fakes.telegram.records import (
                                    CLIP_KINDS,
                                    PHOTO_UPLOAD_LIMIT,
                                    TELEGRAM_DOWNLOAD_LIMIT,
                                    UPLOAD_LIMIT,
                                    ApiError,
                                    Event,
                                    Sent,
                                    StoredFile,
                                    image_size,
                                    public,
)
from fakes.telegram.server import TOKEN, FakeTelegram
from fakes.telegram.user import FakeUser

__all__ = ["CLIP_KINDS", "PHOTO_UPLOAD_LIMIT", "TELEGRAM_DOWNLOAD_LIMIT", "TOKEN", "UPLOAD_LIMIT",
           "ApiError", "Event", "FakeTelegram", "FakeUser", "Sent", "StoredFile", "image_size",
           "public"]

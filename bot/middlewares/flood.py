"""Telegram's flood control (429 ``retry_after``) on the bot's own requests.

A request middleware on the bot's session, so every send in every handler and job gets the
same policy without a try/except of its own: when Telegram answers 429 to a ``send*`` call
(a result photo, document, animation, video, a message), wait the ``retry_after`` it asked for
and send again, a bounded number of times and for a bounded total wait. Telegram did not
deliver a message it refused with 429, so a retry delivers it exactly once.

Cosmetic calls (status edits, chat actions, callback answers) are not retried: waiting for
them would only hold up the job, and the next edit supersedes a lost one. ``getUpdates`` has
its own backoff in the polling loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

log = logging.getLogger(__name__)


def is_delivery(method: TelegramMethod) -> bool:
    """Whether ``method`` delivers something the user waits for (``send*``, not the typing
    indicator)."""
    name = type(method).__name__
    return name.startswith("Send") and name != "SendChatAction"


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Retry a delivery refused with 429 after the time Telegram asks for: at most ``tries``
    attempts and ``max_wait`` seconds of waiting in all; past either the error propagates
    (the job then tells the user it could not send, see ``err_flood``)."""

    def __init__(self, tries: int = 4, max_wait: float = 60.0):
        self.tries = max(1, tries)
        self.max_wait = max_wait

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        if not is_delivery(method):
            return await make_request(bot, method)
        waited, attempt = 0.0, 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                wait = float(exc.retry_after)
                if attempt >= self.tries or waited + wait > self.max_wait:
                    log.warning("%s: flood control, giving up after %d attempt(s) and %.0f s",
                                type(method).__name__, attempt, waited)
                    raise
                attempt += 1
                log.warning("%s: flood control, retrying in %.0f s (attempt %d of %d)",
                            type(method).__name__, wait, attempt, self.tries)
                await asyncio.sleep(wait)
                waited += wait

"""Who may use the bot and how often: an optional allowlist and a per-user token bucket.

Both answer the user (at most once per ``notice_every`` seconds, so a flood does not turn
into a flood of replies) and drop the update.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, User

from bot.clipflow import is_clip_message
from bot.texts import Translator, pick_language

if TYPE_CHECKING:
    from bot.services.coordination import Coordinator


async def _tell(event: TelegramObject, text: str | None) -> None:
    """Answer a dropped update: with ``text``, or silently. A button press is always
    answered, or the user's app keeps showing its loading spinner."""
    if isinstance(event, CallbackQuery):
        await event.answer(text)
    elif isinstance(event, Message) and text:
        await event.answer(text)


class Notices:
    def __init__(self, every: float):
        self.every = every
        self._last: dict[int, float] = {}

    def due(self, user_id: int) -> bool:
        now = time.monotonic()
        if now - self._last.get(user_id, -1e9) < self.every:
            return False
        self._last[user_id] = now
        if len(self._last) > 10_000:
            self._last = {k: v for k, v in self._last.items() if now - v < self.every}
        return True


class AllowlistMiddleware(BaseMiddleware):
    """With a non-empty allowlist, everyone else gets "this bot is private" (now and then)."""

    def __init__(self, allowed: frozenset[int], default_language: str = "en",
                 notice_every: float = 60.0):
        self.allowed = allowed
        self.default_language = default_language
        self._notices = Notices(notice_every)

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if not self.allowed or (user is not None and user.id in self.allowed):
            return await handler(event, data)
        text = None
        if user is not None and self._notices.due(user.id):
            tr = Translator(pick_language(user.language_code, None, self.default_language))
            text = tr("not_allowed")
        await _tell(event, text)
        return None


class RateLimitMiddleware(BaseMiddleware):
    """Token bucket per user: ``burst`` updates at once, refilled at ``per_minute``.

    With ``shared`` (several replicas), the counting happens in Redis for all replicas
    together; this replica's bucket is the fallback while Redis is unreachable."""

    def __init__(self, burst: int = 20, per_minute: float = 40.0, notice_every: float = 10.0,
                 shared: Coordinator | None = None, clip_cost: int = 1):
        self.burst = float(burst)
        # a clip is hundreds of forward passes: its upload spends this many tokens (at most
        # the burst, so one clip is always possible)
        self.clip_cost = float(max(1, min(clip_cost, burst)))
        self.per_minute = per_minute
        self.shared = shared
        self.rate = per_minute / 60.0
        self._buckets: dict[int, tuple[float, float]] = {}  # user -> (tokens, updated)
        self._notices = Notices(notice_every)

    def allow(self, user_id: int, now: float | None = None, cost: float = 1.0) -> bool:
        now = time.monotonic() if now is None else now
        tokens, updated = self._buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        allowed = tokens >= cost
        self._buckets[user_id] = (tokens - cost if allowed else tokens, now)
        if len(self._buckets) > 50_000:  # forget users whose bucket is full again
            full = (self.burst / self.rate) if self.rate else 0
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
        return allowed

    async def _allowed(self, user_id: int, cost: float = 1.0) -> bool:
        if self.shared is not None:
            # the shared window spends the same costs as the bucket: a clip is heavy there too
            verdict = await self.shared.rate_allow(user_id, int(self.burst), self.per_minute,
                                                   cost=int(cost))
            if verdict is not None:
                return verdict
        return self.allow(user_id, cost=cost)

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        cost = self.clip_cost if isinstance(event, Message) and is_clip_message(event) else 1.0
        if user is None or await self._allowed(user.id, cost):
            return await handler(event, data)
        text = None
        if self._notices.due(user.id):
            tr: Translator = data.get("tr") or Translator(pick_language(user.language_code))
            text = tr("rate_limited")
        await _tell(event, text)
        return None

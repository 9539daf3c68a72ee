"""Outer middlewares: allowlist, rate limit, language, sender-chat refusal, album collection,
one update at a time per user."""

from bot.middlewares.access import AllowlistMiddleware, RateLimitMiddleware
from bot.middlewares.album import AlbumMiddleware
from bot.middlewares.identity import SenderChatMiddleware
from bot.middlewares.language import LanguageMiddleware
from bot.middlewares.serial import UserLockMiddleware

__all__ = ["AlbumMiddleware", "AllowlistMiddleware", "LanguageMiddleware", "RateLimitMiddleware",
           "SenderChatMiddleware", "UserLockMiddleware"]

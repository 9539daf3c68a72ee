"""Outer middlewares: allowlist, rate limit, language, sender-chat refusal, album collection."""

from bot.middlewares.access import AllowlistMiddleware, RateLimitMiddleware
from bot.middlewares.album import AlbumMiddleware
from bot.middlewares.identity import SenderChatMiddleware
from bot.middlewares.language import LanguageMiddleware

__all__ = ["AlbumMiddleware", "AllowlistMiddleware", "LanguageMiddleware", "RateLimitMiddleware",
           "SenderChatMiddleware"]

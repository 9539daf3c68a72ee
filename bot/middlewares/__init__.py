"""Outer middlewares: allowlist, rate limit, language, album collection."""

from bot.middlewares.access import AllowlistMiddleware, RateLimitMiddleware
from bot.middlewares.album import AlbumMiddleware
from bot.middlewares.language import LanguageMiddleware

__all__ = ["AlbumMiddleware", "AllowlistMiddleware", "LanguageMiddleware", "RateLimitMiddleware"]

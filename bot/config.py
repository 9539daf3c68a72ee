"""Bot configuration from environment variables and an optional ``.env`` file.

Everything a deployment may change lives here, read once at start-up and validated so that a
typo fails with a message naming the variable instead of surfacing later as odd behaviour.
The bot token is kept in a :class:`Secret` whose ``repr`` hides it, so printing or logging the
settings object can never leak it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


class Secret:
    """A string that never shows itself in ``repr``/``str`` (settings get logged)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """All bot settings; see docs/bot.md for the matching environment variables."""

    bot_token: Secret
    # TorchServe
    ts_url: str = "http://127.0.0.1:8080"
    ts_model: str = "msgnet"
    ts_model_version: str = ""
    ts_inference_key: Secret = field(default_factory=lambda: Secret(""))
    ts_key_file: str = ""
    ts_timeout: float = 120.0          # one stylization request, seconds
    ts_connect_timeout: float = 5.0
    ts_retries: int = 3                # attempts on 503 / connection errors
    ts_retry_delay: float = 1.0        # first backoff delay, doubles each attempt
    presets_ttl: float = 300.0         # how long the server's preset list is trusted
    # Telegram
    telegram_api_url: str = ""         # custom Bot API server (local server or a test fake)
    telegram_api_local: bool = False   # local Bot API server mode (files read from disk)
    max_file_bytes: int = 20 * 1024 * 1024  # getFile limit (public Bot API; 2000 MB local)
    polling_timeout: int = 10
    # webhook mode (off unless WEBHOOK_URL is set)
    webhook_url: str = ""
    webhook_path: str = "/telegram/webhook"
    webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8088
    # state and limits
    redis_url: Secret = field(default_factory=lambda: Secret(""))
    max_concurrent_jobs: int = 2       # jobs sent to TorchServe at once, all users together
    max_queue: int = 100               # jobs waiting beyond that
    job_timeout: float = 300.0         # whole job: downloads, stylization(s), upload
    rate_limit_burst: int = 30         # messages + button presses a user may send at once
    rate_limit_per_minute: float = 60.0
    allowed_users: frozenset[int] = frozenset()  # empty = everyone
    album_delay: float = 0.6           # wait for the rest of an album, seconds
    status_interval: float = 3.0       # at most one status edit per message per interval
    result_cache_per_user: int = 3     # full-quality results kept for the document button
    result_cache_bytes: int = 200 * 1024 * 1024
    # with REDIS_URL: results shared by all replicas for the document button
    shared_result_ttl: float = 3600.0
    shared_result_max_bytes: int = 20 * 1024 * 1024
    shutdown_grace: float = 20.0       # running jobs get this long to finish on shutdown
    default_language: str = "en"
    # observability
    metrics_port: int = 0              # 0 = no Prometheus endpoint
    metrics_host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_json: bool = False

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)

    def secrets(self) -> list[str]:
        """Values to scrub from every log line."""
        values = [self.bot_token.get(), self.ts_inference_key.get(), self.webhook_secret.get(),
                  self.redis_url.get()]
        return [v for v in values if v]


def _env(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _env(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = _env(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = _env(env, name).lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _read_secret_file(name: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{name}={path!r} cannot be read: {exc.strerror}") from None


def _token(env: Mapping[str, str]) -> Secret:
    token = _env(env, "BOT_TOKEN")
    if not token and _env(env, "BOT_TOKEN_FILE"):
        token = _read_secret_file("BOT_TOKEN_FILE", _env(env, "BOT_TOKEN_FILE"))
    if not token:
        raise ConfigError("no bot token: set BOT_TOKEN, or BOT_TOKEN_FILE to a file holding it "
                          "(get a token from @BotFather)")
    left, sep, right = token.partition(":")
    if not sep or not left.isdigit() or not right:
        raise ConfigError("the bot token does not look like '<digits>:<secret>' "
                          "(check BOT_TOKEN / BOT_TOKEN_FILE)")
    return Secret(token)


def _user_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in raw.replace(";", ",").replace(" ", ",").split(","):
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise ConfigError(f"ALLOWED_USER_IDS must list numeric ids, got {part!r}") from None
    return frozenset(ids)


def load_settings(env: Mapping[str, str] | None = None, dotenv: str | Path | None = ".env",
                  ) -> Settings:
    """Read settings from ``env`` (default: the process environment) over a ``.env`` file.

    Real environment variables win over the file, as with python-dotenv's default.
    """
    merged: dict[str, str] = {}
    if dotenv and Path(dotenv).is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ if env is None else env)

    webhook_url = _env(merged, "WEBHOOK_URL")
    webhook_secret = _env(merged, "WEBHOOK_SECRET")
    if webhook_url and not webhook_secret:
        raise ConfigError("WEBHOOK_URL is set but WEBHOOK_SECRET is not: Telegram must prove "
                          "each update with a secret token (1-256 chars of A-Z a-z 0-9 _ -)")
    if webhook_secret and not all(c.isalnum() or c in "_-" for c in webhook_secret):
        raise ConfigError("WEBHOOK_SECRET may only contain A-Z, a-z, 0-9, _ and -")
    path = _env(merged, "WEBHOOK_PATH", "/telegram/webhook")
    if not path.startswith("/"):
        raise ConfigError(f"WEBHOOK_PATH must start with '/', got {path!r}")
    language = _env(merged, "DEFAULT_LANGUAGE", "en").lower()
    if language not in ("en", "ru"):
        raise ConfigError(f"DEFAULT_LANGUAGE must be en or ru, got {language!r}")
    # a local Bot API server serves files up to 2000 MB (the public one: 20 MB)
    api_local = _bool(merged, "TELEGRAM_API_LOCAL")
    log_level = _env(merged, "LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    return Settings(
        bot_token=_token(merged),
        ts_url=_env(merged, "TS_URL", "http://127.0.0.1:8080").rstrip("/"),
        ts_model=_env(merged, "TS_MODEL", "msgnet"),
        ts_model_version=_env(merged, "TS_MODEL_VERSION"),
        ts_inference_key=Secret(_env(merged, "TS_INFERENCE_KEY")),
        ts_key_file=_env(merged, "TS_KEY_FILE"),
        ts_timeout=_float(merged, "TS_TIMEOUT", 120.0, 0.1),
        ts_connect_timeout=_float(merged, "TS_CONNECT_TIMEOUT", 5.0, 0.1),
        ts_retries=_int(merged, "TS_RETRIES", 3, 1),
        ts_retry_delay=_float(merged, "TS_RETRY_DELAY", 1.0),
        presets_ttl=_float(merged, "PRESETS_TTL", 300.0),
        telegram_api_url=_env(merged, "TELEGRAM_API_URL").rstrip("/"),
        telegram_api_local=api_local,
        max_file_bytes=_int(merged, "MAX_FILE_MB", 2000 if api_local else 20, 1) * 1024 * 1024,
        polling_timeout=_int(merged, "POLLING_TIMEOUT", 10, 1),
        webhook_url=webhook_url.rstrip("/"),
        webhook_path=path,
        webhook_secret=Secret(webhook_secret),
        webhook_host=_env(merged, "WEBHOOK_HOST", "127.0.0.1"),
        webhook_port=_int(merged, "WEBHOOK_PORT", 8088, 1),
        redis_url=Secret(_env(merged, "REDIS_URL")),
        max_concurrent_jobs=_int(merged, "MAX_CONCURRENT_JOBS", 2, 1),
        max_queue=_int(merged, "MAX_QUEUE", 100, 0),
        job_timeout=_float(merged, "JOB_TIMEOUT", 300.0, 1.0),
        rate_limit_burst=_int(merged, "RATE_LIMIT_BURST", 30, 1),
        rate_limit_per_minute=_float(merged, "RATE_LIMIT_PER_MINUTE", 60.0, 0.1),
        allowed_users=_user_ids(_env(merged, "ALLOWED_USER_IDS")),
        album_delay=_float(merged, "ALBUM_DELAY", 0.6, 0.05),
        status_interval=_float(merged, "STATUS_INTERVAL", 3.0),
        result_cache_per_user=_int(merged, "RESULT_CACHE_PER_USER", 3),
        result_cache_bytes=_int(merged, "RESULT_CACHE_MB", 200) * 1024 * 1024,
        shared_result_ttl=_float(merged, "SHARED_RESULT_TTL", 3600.0, 1.0),
        shared_result_max_bytes=_int(merged, "SHARED_RESULT_MB", 20, 0) * 1024 * 1024,
        shutdown_grace=_float(merged, "SHUTDOWN_GRACE", 20.0),
        default_language=language,
        metrics_port=_int(merged, "METRICS_PORT", 0),
        metrics_host=_env(merged, "METRICS_HOST", "127.0.0.1"),
        log_level=log_level,
        log_json=_bool(merged, "LOG_JSON"),
    )

"""Bot configuration from environment variables and an optional ``.env`` file.

A pydantic-settings model: each variable is a typed field with its default written once
(``TS_URL`` is ``ts_url`` ...), validated at start-up so that a typo fails with a message
naming the variable instead of surfacing later as odd behaviour. Secrets are :class:`Secret`
(a ``SecretStr``), so printing or logging the settings object can never leak them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

MIB = 1024 * 1024
SERVER_MAX_MB = 20  # handler max_bytes (handler/settings.py), the default upload bound
# the environment a load_settings() call reads (None: the process environment)
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("bot_config_environ", default=None)


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


class Secret(SecretStr):
    """A ``SecretStr`` with a short ``get()`` and a ``repr`` that says only whether it is set."""

    def get(self) -> str:
        return self.get_secret_value()

    def __repr__(self) -> str:
        return "Secret('***')" if self.get() else "Secret('')"

    __str__ = __repr__


class _MappingEnv(EnvSettingsSource):
    """Environment variables from a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


class Settings(BaseSettings):
    """All bot settings; see docs/bot.md for the matching environment variables."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True,
                                      str_strip_whitespace=True)

    bot_token: Secret
    bot_token_file: str = ""
    # TorchServe
    ts_url: str = "http://127.0.0.1:8080"
    ts_model: str = "msgnet"
    ts_model_version: str = ""
    ts_inference_key: Secret = Secret("")
    ts_key_file: str = ""
    # one stylization request, seconds: >= clientTimeoutInMills of handler/model-config.yaml,
    # the server's deadline for an answer (docs/reliability.md, "Timeouts that agree")
    ts_timeout: float = Field(180.0, ge=0.1)
    ts_connect_timeout: float = Field(5.0, ge=0.1)
    ts_retries: int = Field(3, ge=1)                  # attempts on 503 / connection errors
    ts_retry_delay: float = Field(1.0, ge=0)          # first backoff delay, doubles each time
    presets_ttl: float = Field(300.0, ge=0)           # how long the preset list is trusted
    # clips (GIFs, videos, video notes) go to their own model, a worker of its own so they do
    # not hold up photos (scripts/clip_model.py); one clip request waits up to this long:
    # >= that model's clientTimeoutInMills (1800 s: two clips queued ahead, 600 s each, then
    # its own), so a clip the server may still answer is never given up
    ts_clip_model: str = "msgnet_clip"
    ts_clip_timeout: float = Field(1860.0, ge=1.0)
    # learning a user's style runs on its own model too (scripts/learn_model.py: one worker,
    # a 600 s responseTimeout); the button under a result says it takes about LEARN_SECONDS
    ts_learn_model: str = "msgnet_learn"
    ts_learn_timeout: float = Field(660.0, ge=1.0)
    learn_seconds: int = Field(40, ge=1)  # docs/learn_bench.json: median 38 s on 2 cores
    learn_steps: int | None = Field(None, ge=1)  # steps of a fit (None: the server's default)
    # Telegram
    telegram_api_url: str = ""         # custom Bot API server (local server or a test fake)
    telegram_api_local: bool = False   # local Bot API server mode (files read from disk)
    # largest upload read (whole, into memory): TorchServe's max_bytes, local server or not
    max_file_mb: int | None = Field(None, ge=1, le=2000)
    polling_timeout: int = Field(10, ge=1)
    # webhook mode (off unless WEBHOOK_URL is set)
    webhook_url: str = ""
    webhook_path: str = "/telegram/webhook"
    webhook_secret: Secret = Secret("")
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(8088, ge=1)
    # state and limits
    redis_url: Secret = Secret("")
    max_concurrent_jobs: int = Field(2, ge=1)  # jobs sent to TorchServe at once, all users
    max_queue: int = Field(100, ge=0)          # jobs waiting beyond that
    job_timeout: float = Field(300.0, ge=1.0)  # whole job: downloads, stylization(s), upload
    clip_job_timeout: float = Field(1920.0, ge=1.0)  # the same for a clip (>= ts_clip_timeout)
    max_concurrent_clips: int = Field(1, ge=1)  # clip jobs running at once (heavy jobs)
    clip_rate_cost: int = Field(10, ge=1)      # rate-limit tokens a clip upload costs
    rate_limit_burst: int = Field(30, ge=1)    # messages + button presses at once, per user
    rate_limit_per_minute: float = Field(60.0, ge=0.1)
    allowed_users: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), validation_alias="allowed_user_ids")  # empty = everyone
    album_delay: float = Field(0.6, ge=0.05)   # wait for the rest of an album, seconds
    status_interval: float = Field(3.0, ge=0)  # at most one status edit per interval
    result_cache_per_user: int = Field(3, ge=0)  # results kept for the document button
    result_cache_mb: int = Field(200, ge=0)
    # with REDIS_URL: results shared by all replicas for the document button
    shared_result_ttl: float = Field(3600.0, ge=1.0)
    shared_result_mb: int = Field(20, ge=0)
    # with REDIS_URL: a replica's "alive" beat; jobs of one silent for 3 beats are orphaned
    replica_heartbeat: float = Field(5.0, ge=0.1)
    shutdown_grace: float = Field(20.0, ge=0)  # running jobs get this long on shutdown
    default_language: Literal["en", "ru"] = "en"
    # observability
    metrics_port: int = Field(0, ge=0)         # 0 = no Prometheus endpoint
    metrics_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_json: bool = False

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        env = env_settings if environ is None else _MappingEnv(settings_cls, environ)
        return init_settings, env, dotenv_settings

    # ---------------------------------------------------------------- validators
    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get("bot_token"):
            path = str(values.get("bot_token_file") or "").strip()
            if path:
                try:
                    values = {**values, "bot_token": Path(path).read_text("utf-8").strip()}
                except OSError as exc:
                    raise ValueError(f"BOT_TOKEN_FILE={path!r} cannot be read: "
                                     f"{exc.strerror}") from None
        if isinstance(values, dict) and not values.get("bot_token"):
            raise ValueError("no bot token: set BOT_TOKEN, or BOT_TOKEN_FILE to a file "
                             "holding it (get a token from @BotFather)")
        return values

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, token: Secret) -> Secret:
        left, sep, right = token.get().partition(":")
        if not sep or not left.isdigit() or not right:
            raise ValueError("the bot token does not look like '<digits>:<secret>' "
                             "(check BOT_TOKEN / BOT_TOKEN_FILE)")
        return token

    @field_validator("ts_url", "telegram_api_url", "webhook_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @field_validator("webhook_path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"WEBHOOK_PATH must start with '/', got {path!r}")
        return path

    @field_validator("default_language", "log_level", mode="before")
    @classmethod
    def _case(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.lower() if info.field_name == "default_language" else value.upper()

    @field_validator("allowed_users", mode="before")
    @classmethod
    def _user_ids(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        parts = [p for p in raw.replace(";", ",").replace(" ", ",").split(",") if p]
        bad = [p for p in parts if not p.lstrip("-").isdigit()]
        if bad:
            raise ValueError(f"ALLOWED_USER_IDS must list numeric ids, got {bad[0]!r}")
        return frozenset(int(p) for p in parts)

    @model_validator(mode="after")
    def _webhook_secret(self) -> Settings:
        secret = self.webhook_secret.get()
        if self.webhook_url and not secret:
            raise ValueError("WEBHOOK_URL is set but WEBHOOK_SECRET is not: Telegram must "
                             "prove each update with a secret token (1-256 chars of A-Z a-z "
                             "0-9 _ -)")
        if secret and not all(c.isalnum() or c in "_-" for c in secret):
            raise ValueError("WEBHOOK_SECRET may only contain A-Z, a-z, 0-9, _ and -")
        return self

    # ---------------------------------------------------------------- derived
    @property
    def max_file_bytes(self) -> int:
        """The handler refuses images over 20 MiB (``max_bytes``): reading more would only hold
        up to 2000 MB in memory for a refusal, even when a local Bot API server could serve it.
        Raise MAX_FILE_MB together with the server's ``max_bytes``."""
        return (self.max_file_mb or SERVER_MAX_MB) * MIB

    @property
    def result_cache_bytes(self) -> int:
        return self.result_cache_mb * MIB

    @property
    def shared_result_max_bytes(self) -> int:
        return self.shared_result_mb * MIB

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)

    def secrets(self) -> list[str]:
        """Values to scrub from every log line."""
        values = [self.bot_token.get(), self.ts_inference_key.get(), self.webhook_secret.get(),
                  self.redis_url.get()]
        return [v for v in values if v]


def _config_error(exc: ValidationError) -> ConfigError:
    """The first problem, naming its environment variable (never echoing a secret)."""
    err = exc.errors(include_url=False)[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    message = err["msg"].removeprefix("Value error, ")
    if not field:  # a model-level check: its message names the variables itself
        return ConfigError(message)
    name = "ALLOWED_USER_IDS" if field == "allowed_user_ids" else field.upper()
    if name in message:
        return ConfigError(message)
    shown = "" if "secret" in err["type"] or field in _SECRET_FIELDS else (
        f", got {err.get('input')!r}")
    return ConfigError(f"{name}: {message}{shown}")


_SECRET_FIELDS = {"bot_token", "ts_inference_key", "webhook_secret", "redis_url"}


def load_settings(env: Mapping[str, str] | None = None, dotenv: str | Path | None = ".env",
                  ) -> Settings:
    """Read settings from ``env`` (default: the process environment) over a ``.env`` file.

    Real environment variables win over the file, as with python-dotenv's default.
    """
    token = _ENVIRON.set(None if env is None else dict(env))
    try:
        env_file = dotenv if dotenv and Path(dotenv).is_file() else None
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        raise _config_error(exc) from None
    finally:
        _ENVIRON.reset(token)


__all__ = ["ConfigError", "Secret", "Settings", "load_settings"]

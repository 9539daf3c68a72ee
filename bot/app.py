"""Wiring: the Bot (with a custom Bot API server if configured), the Dispatcher with its
routers and middlewares, the services, and the polling / webhook runners."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import BotCommand
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.config import Settings
from bot.metrics import Metrics
from bot.middlewares import (
    AlbumMiddleware,
    AllowlistMiddleware,
    LanguageMiddleware,
    RateLimitMiddleware,
    SenderChatMiddleware,
    UserLockMiddleware,
)
from bot.middlewares.flood import RetryAfterMiddleware
from bot.routers import (
    clips,
    controls,
    errors,
    fallback,
    jobs,
    learned,
    photos,
    presets,
    start_help,
)
from bot.routers import settings as settings_routes
from bot.routers.presets import PreviewIds
from bot.services.coordination import Coordinator
from bot.services.jobs import JobQueue
from bot.services.learn_job import LearnJobs
from bot.services.learning import LearnClient
from bot.services.results import ResultCache
from bot.services.runner import JobRunner
from bot.services.torchserve import InferenceKey, TorchServeClient
from bot.texts import LANGUAGES, Translator

log = logging.getLogger(__name__)

# the command menu: the short path and what is hard to find otherwise (six at most); /size,
# /result, /cancel, /content, /style and /tests still work, and /help lists the useful ones
COMMANDS = ("start", "presets", "mystyles", "restart", "language", "help")


def api_server(settings: Settings) -> TelegramAPIServer:
    if not settings.telegram_api_url:
        return PRODUCTION
    return TelegramAPIServer.from_base(settings.telegram_api_url,
                                       is_local=settings.telegram_api_local)


def create_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=api_server(settings))
    # Telegram's 429 on a send: wait as asked and send again (bot/middlewares/flood.py)
    session.middleware(RetryAfterMiddleware())
    return Bot(settings.bot_token.get(), session=session)


def create_storage(settings: Settings) -> BaseStorage:
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisStorage  # needs the redis package

        return RedisStorage.from_url(settings.redis_url.get())
    return MemoryStorage()


@dataclass
class Services:
    settings: Settings
    ts: TorchServeClient
    queue: JobQueue
    results: ResultCache
    runner: JobRunner
    previews: PreviewIds
    metrics: Metrics | None
    coordination: Coordinator | None = None
    learn_jobs: LearnJobs | None = None


# a lock outlives its job's timeout by this much before Redis drops it (a replica that died)
LOCK_MARGIN = 60.0


def create_coordination(settings: Settings) -> Coordinator | None:
    """Shared per-user lock, cancel channel, results and rate limits: only with Redis, for
    several replicas; a single process keeps all of that in memory."""
    if not settings.redis_url:
        return None
    return Coordinator.from_url(
        settings.redis_url.get(), lock_ttl=settings.job_timeout + LOCK_MARGIN,
        result_ttl=settings.shared_result_ttl,
        result_max_bytes=settings.shared_result_max_bytes,
        results_per_user=settings.result_cache_per_user)


def create_services(settings: Settings, bot: Bot,
                    coordination: Coordinator | None = None) -> Services:
    metrics = Metrics() if settings.metrics_port else None
    coordination = coordination or create_coordination(settings)
    client = TorchServeClient(
        settings.ts_url, settings.ts_model, settings.ts_model_version,
        key=InferenceKey(settings.ts_inference_key.get(), settings.ts_key_file),
        timeout=settings.ts_timeout, connect_timeout=settings.ts_connect_timeout,
        retries=settings.ts_retries, retry_delay=settings.ts_retry_delay,
        info_ttl=settings.presets_ttl, max_connections=settings.max_concurrent_jobs + 4,
        clip_model=settings.ts_clip_model, clip_timeout=settings.ts_clip_timeout)
    queue = JobQueue(settings.max_concurrent_jobs, settings.max_queue, metrics, coordination,
                     max_heavy=settings.max_concurrent_clips)
    results = ResultCache(settings.result_cache_per_user, settings.result_cache_bytes)
    runner = JobRunner(bot, client, queue, results, settings, metrics, coordination)
    # learned styles: their own model, through the same client (bot/services/learning.py)
    runner.learn = LearnClient(client, settings.ts_learn_model,
                               timeout=settings.ts_learn_timeout, steps=settings.learn_steps)
    learn_jobs = LearnJobs(runner, runner.learn, settings.learn_seconds)
    return Services(settings, client, queue, results, runner, PreviewIds(), metrics,
                    coordination, learn_jobs)


def create_dispatcher(settings: Settings, services: Services,
                      storage: BaseStorage | None = None) -> Dispatcher:
    dp = Dispatcher(storage=storage or create_storage(settings))
    # one instance each for messages and button presses: they share a user's bucket
    allowlist = AllowlistMiddleware(settings.allowed_users, settings.default_language)
    rate_limit = RateLimitMiddleware(settings.rate_limit_burst, settings.rate_limit_per_minute,
                                     shared=services.coordination,
                                     clip_cost=settings.clip_rate_cost)
    language = LanguageMiddleware(settings.default_language)
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(allowlist)
        observer.outer_middleware(language)  # before the limiter: its notice is translated
        observer.outer_middleware(rate_limit)
    dp.message.outer_middleware(SenderChatMiddleware())  # anonymous admins, channels
    dp.message.outer_middleware(AlbumMiddleware(settings.album_delay))
    # after the album gathering (an album's first message holds it for the whole album);
    # button presses take the same lock: they read and write the same state
    user_lock = UserLockMiddleware()
    dp.message.outer_middleware(user_lock)
    dp.callback_query.outer_middleware(user_lock)
    dp.include_routers(start_help.create_router(), settings_routes.create_router(),
                       presets.create_router(), controls.create_router(),
                       learned.create_router(), jobs.create_router(),  # /cancel renaming
                       clips.create_router(), photos.create_router(),
                       fallback.create_router(),
                       errors.create_router(settings.default_language))  # Redis down
    dp.workflow_data.update(settings=settings, ts=services.ts, queue=services.queue,
                            results=services.results, runner=services.runner,
                            previews=services.previews, services=services,
                            learn_jobs=services.learn_jobs)

    async def on_startup(bot: Bot) -> None:
        await services.ts.start()
        services.queue.start()
        await services.queue.start_coordination()
        if services.coordination is not None:  # jobs lost with a dead replica: tell users
            await services.coordination.start_recovery(services.runner.tell_interrupted,
                                                       settings.replica_heartbeat)
        if services.metrics is not None:
            await services.metrics.serve(settings.metrics_host, settings.metrics_port)
        await set_commands(bot)
        await set_descriptions(bot)

    async def on_shutdown() -> None:
        log.info("shutting down: finishing or cancelling jobs")
        await services.queue.shutdown(settings.shutdown_grace)
        if services.coordination is not None:
            await services.coordination.close()
        await services.ts.close()
        if services.metrics is not None:
            await services.metrics.close()
        await dp.storage.close()

    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return dp


async def set_commands(bot: Bot) -> None:
    """The command menu in each language (English is the default for everyone else)."""
    try:
        for code in LANGUAGES:
            tr = Translator(code)
            commands = [BotCommand(command=c, description=tr(f"cmd_{c}")) for c in COMMANDS]
            await bot.set_my_commands(commands, language_code=None if code == "en" else code)
    except TelegramAPIError as exc:
        log.warning("could not set the command menu: %s", type(exc).__name__)


async def set_descriptions(bot: Bot) -> None:
    """The profile texts in each language: the description fills the empty "What can this
    bot do?" screen a first-time user sees before /start, the short one the profile and
    shared links. Telegram keeps them, so a failure only costs a warning."""
    try:
        for code in LANGUAGES:
            tr = Translator(code)
            language = None if code == "en" else code
            await bot.set_my_description(tr("bot_description"), language_code=language)
            await bot.set_my_short_description(tr("bot_short_description"),
                                               language_code=language)
    except TelegramAPIError as exc:
        log.warning("could not set the bot's description: %s", type(exc).__name__)


async def run_polling(settings: Settings) -> None:
    bot = create_bot(settings)
    services = create_services(settings, bot)
    dp = create_dispatcher(settings, services)
    # a webhook left behind by webhook mode would make getUpdates fail with a conflict
    await bot.delete_webhook(drop_pending_updates=False)
    await dp.start_polling(bot, polling_timeout=settings.polling_timeout,
                           allowed_updates=dp.resolve_used_update_types(), handle_signals=True)


def create_webhook_app(settings: Settings, bot: Bot, dp: Dispatcher) -> web.Application:
    """The aiohttp app receiving updates at ``WEBHOOK_PATH``; requests without the secret
    token header are refused (401) by aiogram's handler."""
    app = web.Application()
    # setup_application first: its shutdown hook (our job drain, which still messages users)
    # must run before the request handler's hook closes the bot session
    setup_application(app, dp, bot=bot)
    SimpleRequestHandler(dp, bot, secret_token=settings.webhook_secret.get(),
                         handle_in_background=True).register(app, path=settings.webhook_path)
    return app


async def run_webhook(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve the webhook until SIGINT/SIGTERM (or until ``stop`` is set, for tests), then
    shut down gracefully: running jobs are drained or cancelled and their users told."""
    bot = create_bot(settings)
    services = create_services(settings, bot)
    dp = create_dispatcher(settings, services)
    app = create_webhook_app(settings, bot, dp)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
        await site.start()
        log.info("webhook mode: listening on %s:%d%s", settings.webhook_host,
                 settings.webhook_port, settings.webhook_path)
        # only once the port listens: Telegram may deliver right after this call
        await bot.set_webhook(settings.webhook_url + settings.webhook_path,
                              secret_token=settings.webhook_secret.get(),
                              allowed_updates=dp.resolve_used_update_types())
        await stop.wait()
    finally:
        if own_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        await runner.cleanup()

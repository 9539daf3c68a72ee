"""Stylization jobs on the Telegram side: status message, downloads, TorchServe, delivery.

Handlers call :meth:`JobRunner.start` with a job spec (see :func:`bot.flow.job_spec`); the
:class:`~bot.services.jobs.JobQueue` decides when it runs. Every failure a user can cause or
meet ends in a message in their language, never in silence.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramRetryAfter,
)
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup
from aiogram.utils.chat_action import ChatActionSender
from redis.exceptions import RedisError

from bot import controls, flow
from bot.config import Settings
from bot.imageinfo import dimensions
from bot.keyboards import cancel_keyboard, result_keyboard, sheet_keyboard
from bot.services import torchserve as ts
from bot.services.clip_delivery import CLIP_ERRORS, deliver_clip, is_clip_spec
from bot.services.coordination import Coordinator
from bot.services.jobs import SHUTDOWN, Job, JobQueue, QueueFull, ShuttingDown, UserBusy
from bot.services.results import ResultCache
from bot.services.status import StatusMessage
from bot.texts import Translator

log = logging.getLogger(__name__)

# sendPhoto takes at most 10 MB; a bigger result goes as a document (up to 50 MB on the public
# Bot API, 2000 MB on a local one)
DELIVERED = "delivered"  # job payload flag: every result of the job has been sent
FINISHING_WAIT_S = 10.0  # how long a new job waits for a delivered one to tidy up
PHOTO_MAX_BYTES = 10 * 1024 * 1024


def shutdown_notice(settings: Settings) -> str:
    """The text key telling a user their job was cancelled by a restart: photos survive a
    restart only when Redis holds the state, so only then is that promised."""
    return "shutdown_cancelled_kept" if settings.redis_url.get() else "shutdown_cancelled"


class JobFailure(Exception):
    """A failure to report to the user: a text key, its values, and a metrics reason."""

    def __init__(self, key: str, reason: str, *, drop: str | None = None, **values: Any):
        super().__init__(key)
        self.key = key
        self.reason = reason
        self.drop = drop  # FSM key of an image to forget (it is unusable)
        self.values = values


class JobRunner:
    def __init__(self, bot: Bot, client: ts.TorchServeClient, queue: JobQueue,
                 results: ResultCache, settings: Settings, metrics: Any = None,
                 coordination: Coordinator | None = None):
        self.bot = bot
        self.coordination = coordination  # shares results with the other replicas
        self.ts = client
        self.queue = queue
        self.results = results
        self.settings = settings
        self.metrics = metrics
        self.learn: Any = None  # a LearnClient when styles can be learned (bot/app.py)

    async def start(self, *, chat_id: int, user_id: int, tr: Translator, state: FSMContext,
                    spec: dict[str, Any]) -> Job | None:
        """Queue a job and show its status message; tells the user when that is refused."""
        status = StatusMessage(self.bot, chat_id, cancel_keyboard(tr),
                               self.settings.status_interval)

        async def on_position(position: int) -> None:
            await status.set(self._status_text(tr, spec, position))

        async def on_cancel(reason: str) -> None:
            if reason == SHUTDOWN:
                await status.close()
                await self._say(chat_id, tr(shutdown_notice(self.settings)))
            elif not await status.close(tr("cancelled")):
                await self._say(chat_id, tr("cancelled"))

        job = Job(user_id=user_id, run=self._runner(chat_id, tr, state, spec, status),
                  on_position=on_position, on_cancel=on_cancel,
                  payload={"spec": spec, "note": {"chat_id": chat_id, "lang": tr.lang}},
                  heavy=is_clip_spec(spec))
        try:
            position = await self._submit(job)
        except UserBusy:
            await self._say(chat_id, tr("already_busy"))
            return None
        except QueueFull:
            await self._say(chat_id, tr("queue_full"))
            return None
        except ShuttingDown:
            await self._say(chat_id, tr("shutting_down"))
            return None
        current = job.payload.get("_position", position)
        await status.show(self._status_text(tr, spec, current))
        return job

    async def _submit(self, job: Job) -> int:
        """Queue ``job``. A user's job that has sent its result is only tidying up (its status
        message, the lock): a button pressed under that result waits for it, instead of being
        told that a job is still running."""
        try:
            return await self.queue.submit(job)
        except UserBusy:
            current = self.queue.get(job.user_id)
            if current is None or not current.payload.get(DELIVERED):
                raise
            try:
                await asyncio.wait_for(current.done.wait(), FINISHING_WAIT_S)
            except TimeoutError:
                raise UserBusy() from None
            return await self.queue.submit(job)

    def _status_text(self, tr: Translator, spec: dict[str, Any], position: int,
                     done: int = 0) -> str:
        if position > 0:
            return tr("queued", position=position)
        if is_clip_spec(spec):
            return tr("running_clip", done=done, total=spec.get("_frames") or "…")
        if spec.get("sheet"):
            return tr("running_sheet")
        sizes = spec["sizes"]
        if len(sizes) > 1:
            return tr("running_tests", sizes=", ".join(map(str, sizes)), done=done,
                      total=len(sizes))
        return tr("running", size=sizes[0])

    def _runner(self, chat_id: int, tr: Translator, state: FSMContext, spec: dict[str, Any],
                status: StatusMessage):
        async def run(job: Job) -> None:
            clip = is_clip_spec(spec)
            timeout = self.settings.clip_job_timeout if clip else self.settings.job_timeout
            action = ChatActionSender.upload_video if clip else ChatActionSender.upload_photo
            try:
                async with action(bot=self.bot, chat_id=chat_id, interval=4.5,
                                  initial_sleep=0.0):
                    async with asyncio.timeout(timeout):
                        await self._work(job, chat_id, tr, state, spec, status)
                        job.payload[DELIVERED] = True
            except JobFailure as failure:
                await self._fail(chat_id, tr, state, status, failure)
            except TimeoutError:
                await self._fail(chat_id, tr, state, status, JobFailure("err_timeout", "timeout"))
            except TelegramRetryAfter:  # still flood-limited after the retries (flood.py)
                await self._fail(chat_id, tr, state, status, JobFailure("err_flood", "flood"))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s crashed", job.id)
                await self._fail(chat_id, tr, state, status, JobFailure("err_internal", "bug"))
            finally:
                if not asyncio.current_task().cancelling():
                    await status.close()
        return run

    async def _work(self, job: Job, chat_id: int, tr: Translator, state: FSMContext,
                    spec: dict[str, Any], status: StatusMessage) -> None:
        content = await self._download(spec["content"], "content")
        style = await self._download(spec["style"], "style") if spec.get("style") else None
        style_id, options = controls.request_fields(spec)
        sizes: list[int] = spec["sizes"]
        if is_clip_spec(spec):
            await self._clip(job, chat_id, tr, state, spec, status, content, style, style_id,
                             options)
            return
        if spec.get("sheet"):
            await self._sheet(chat_id, tr, content, sizes[0], options, spec)
            return
        for done, size in enumerate(sizes):
            if done:
                await status.set(self._status_text(tr, spec, 0, done))
            try:
                result = await self.ts.stylize(content, style=style, style_id=style_id,
                                               size=size, options=options)
            except ts.TorchServeError as exc:
                raise self._failure(exc, spec) from None
            await self._deliver(job, chat_id, tr, state, spec, result, size,
                                last=done == len(sizes) - 1)
        if len(sizes) > 1:
            await self._say(chat_id, tr("tests_done", sizes=", ".join(map(str, sizes))))

    async def _clip(self, job: Job, chat_id: int, tr: Translator, state: FSMContext,
                    spec: dict[str, Any], status: StatusMessage, content: bytes,
                    style: bytes | None, style_id: str | None, options: dict[str, str]) -> None:
        """A clip on the clip model: frames done / total in the status message (edited at
        most every ``status_interval``), the result as an animation, video or video note.
        The clip carries a fresh cancel token: when the job is cancelled (/cancel, its
        button, another replica, the job timeout, shutdown) the client also tells the server
        to stop it, which it otherwise would not notice."""

        async def progress(done: int, total: int) -> None:
            spec["_frames"] = total
            await status.set(self._status_text(tr, spec, 0, done))

        try:
            result = await self.ts.stylize_clip(content, style=style, style_id=style_id,
                                                options=options, on_progress=progress,
                                                cancel_token=secrets.token_urlsafe(16))
        except ts.TorchServeError as exc:
            raise self._failure(exc, spec) from None
        if result.content_type not in ("image/gif", "video/mp4"):
            # a GIF document with one frame: the server answered with a photo
            await self._deliver(job, chat_id, tr, state, {**spec, "content": spec["content"]},
                                ts.StyledImage(result.data, result.content_type),
                                spec["sizes"][0], last=True)
            return
        await deliver_clip(self.bot, chat_id, tr, spec, result)
        job.payload[DELIVERED] = True
        if self.metrics is not None:
            self.metrics.delivered(time.monotonic() - job.submitted_at)

    async def _sheet(self, chat_id: int, tr: Translator, content: bytes, size: int,
                     options: dict[str, str], spec: dict[str, Any]) -> None:
        """The contact sheet, answered with a button per preset to pick one from it."""
        try:
            info = await self.ts.server_info()
            result = await self.ts.stylize(content, size=size,
                                           options={**options, "action": "sheet"})
        except ts.TorchServeError as exc:
            raise self._failure(exc, spec) from None
        names = [p.name for p in info.presets]
        filename = f"sheet.{result.extension}"
        markup = sheet_keyboard(tr, names, spec.get("rid", ""))
        try:
            await self.bot.send_photo(chat_id, BufferedInputFile(result.data, filename),
                                      caption=tr("sheet_caption"),
                                      reply_markup=markup)
        except (TelegramBadRequest, TelegramEntityTooLarge) as exc:
            log.info("sheet refused as a photo (%s), sending a document", exc.message)
            await self.bot.send_document(chat_id, BufferedInputFile(result.data, filename),
                                         caption=tr("sheet_caption"),
                                         reply_markup=markup)

    async def _download(self, ref: dict[str, Any], which: str) -> bytes:
        limit = self.settings.max_file_bytes
        too_big = JobFailure("err_file_too_big", "file_too_big", drop=which,
                             which=which, limit_mb=f"{limit / 2**20:.0f}")
        try:
            file = await self.bot.get_file(ref["file_id"])
            if file.file_size and file.file_size > limit:
                raise too_big
            if not file.file_path:
                raise JobFailure("err_download", "download", drop=which, which=which)
            buffer = await self.bot.download_file(file.file_path, timeout=60)
        except TelegramBadRequest as exc:
            if "too big" in exc.message.lower():
                raise too_big from None
            raise JobFailure("err_download", "download", drop=which, which=which) from None
        except (TelegramAPIError, aiohttp.ClientError, TimeoutError):
            raise JobFailure("err_download", "download", which=which) from None
        return buffer.read()

    def _failure(self, exc: ts.TorchServeError, spec: dict[str, Any]) -> JobFailure:
        log.info("torchserve refused a job: %r", exc)
        if exc.kind == ts.BUSY:
            return JobFailure("err_busy", "busy", attempts=exc.attempts)
        if exc.kind == ts.DOWN:
            return JobFailure("err_down", "down", attempts=exc.attempts)
        if exc.kind == ts.TIMEOUT:
            return JobFailure("err_timeout", "timeout")
        if exc.code == ts.STREAM_CUT:  # the clip worker died (or the connection broke) mid-clip
            return JobFailure("err_clip_interrupted", "clip_interrupted")
        if exc.code == ts.INVALID_KEY:  # wrong or expired key, also after re-reading it
            return JobFailure("err_auth", "auth")
        if exc.kind != ts.CLIENT:
            return JobFailure("err_server", "server")
        which = self._which(exc.field, spec)
        if exc.code == "corrupt_image":
            return JobFailure("err_corrupt", exc.code, drop=which, which=which)
        if exc.code == "not_an_image":
            # a server without pillow-heif names HEIC in its message: give the iPhone tip
            key = "err_heic" if "HEIC" in exc.message else "err_not_image"
            return JobFailure(key, exc.code, drop=which, which=which)
        if exc.code == "too_large":
            return JobFailure("err_too_large", exc.code, drop=which, which=which)
        if exc.code == "unknown_preset":
            return JobFailure("err_unknown_preset", exc.code, drop="preset",
                              name=spec.get("preset") or "?")
        if exc.code == "bad_option":
            return JobFailure("err_bad_option", exc.code)
        if exc.code in ("weights_mismatch", "unreadable_style"):  # a learned style
            return JobFailure("err_learned_stale", exc.code, drop="preset",
                              name=spec.get("preset") or "?")
        if exc.code in CLIP_ERRORS:
            return JobFailure(CLIP_ERRORS[exc.code], exc.code, drop="content",
                              detail=exc.message[:200])
        return JobFailure("err_server", exc.code or "client")

    @staticmethod
    def _which(field: str, spec: dict[str, Any]) -> str | None:
        """Which upload an input error is about: the ``field`` the server blames
        (``content_tensor`` is the content, ``style_2`` a style), or the content when the
        style is a preset."""
        name = field.split("_", 1)[0]
        if name in ("content", "style"):
            return name
        return None if spec.get("style") else "content"

    async def _fail(self, chat_id: int, tr: Translator, state: FSMContext,
                    status: StatusMessage, failure: JobFailure) -> None:
        if self.metrics is not None:
            self.metrics.failed(failure.reason)
        values = dict(failure.values)
        if "which" in values:
            values["which"] = tr(f"which_{values['which'] or 'unknown'}")
        if failure.key == "err_unknown_preset":  # a preset's display title, as in the gallery
            values["name"] = tr.title(str(values.get("name")))
        if failure.drop:
            try:
                await state.update_data({failure.drop: None})
            except RedisError as exc:  # still tell the user below
                log.warning("redis unavailable, unusable %s kept: %s", failure.drop,
                            type(exc).__name__)
        await status.close()
        await self._say(chat_id, tr(failure.key, **values))

    async def _deliver(self, job: Job, chat_id: int, tr: Translator, state: FSMContext,
                       spec: dict[str, Any], result: ts.StyledImage, size: int, last: bool,
                       ) -> None:
        dims = dimensions(result.data)
        width, height = dims if dims else (size, size)
        filename = f"styled_{size}px.{result.extension}"
        rid = self.results.put(job.user_id, result.data, filename)
        if self.coordination is not None:  # so the button works on any replica
            await self.coordination.put_result(job.user_id, rid, result.data, filename)
        try:
            await state.update_data(flow.remember_result(await state.get_data(), rid,
                                                         {**spec, "sizes": [size]}))
        except RedisError as exc:  # the picture is made: deliver it, its re-run buttons aside
            log.warning("redis unavailable, result not remembered: %s", type(exc).__name__)
        style = tr.title(spec["preset"]) if spec.get("preset") else tr("style_own")
        extra = controls.describe(tr, spec)
        if extra:
            style = f"{style} · {extra}"
        markup = await self.result_markup(tr, rid, {**spec, "sizes": [size]}) if last else None
        if spec.get("document"):
            await self._send_document(chat_id, tr, result.data, filename, width, height)
        elif len(result.data) > PHOTO_MAX_BYTES:
            log.info("result of %d bytes is too big for a photo, sending a document",
                     len(result.data))
            await self._send_document(chat_id, tr, result.data, filename, width, height, markup)
        else:
            caption = (tr("result_caption", style=style, width=width, height=height)
                       if len(spec["sizes"]) == 1 else
                       tr("result_caption_size", width=width, height=height))
            try:
                await self.bot.send_photo(chat_id, BufferedInputFile(result.data, filename),
                                          caption=caption, reply_markup=markup)
            except (TelegramBadRequest, TelegramEntityTooLarge) as exc:  # size, dimensions
                log.info("photo refused (%s), sending a document", exc.message)
                await self._send_document(chat_id, tr, result.data, filename, width, height,
                                          markup)
        if self.metrics is not None and last:
            self.metrics.delivered(time.monotonic() - job.submitted_at)

    async def _send_document(self, chat_id: int, tr: Translator, data: bytes, filename: str,
                             width: int, height: int,
                             markup: InlineKeyboardMarkup | None = None) -> None:
        """Send ``data`` as a file; a file Telegram refuses as too large is explained."""
        try:
            await self.bot.send_document(chat_id, BufferedInputFile(data, filename),
                                         caption=tr("full_caption", width=width, height=height),
                                         reply_markup=markup)
        except TelegramEntityTooLarge:
            log.warning("result of %d bytes refused by Telegram as too large", len(data))
            await self._say(chat_id, tr("err_result_too_large",
                                        size_mb=f"{len(data) / 2**20:.1f}"))

    async def send_full(self, chat_id: int, user_id: int, tr: Translator, rid: str) -> bool:
        """Send a cached result as a document; False when it is no longer cached."""
        item = self.results.get(user_id, rid)
        if item is None and self.coordination is not None:
            item = await self.coordination.get_result(user_id, rid)
        if item is None:
            return False
        dims = dimensions(item.data) or (0, 0)
        await self._send_document(chat_id, tr, item.data, item.filename, *dims)
        return True

    async def tell_interrupted(self, user_id: int, note: dict[str, Any]) -> None:
        """A job of ``user_id`` died with its replica (found by the coordination sweep): the
        user's photos are still in the FSM state, so /result makes it again."""
        if self.metrics is not None:
            self.metrics.failed("interrupted")
        await self._say(int(note.get("chat_id") or user_id),
                        Translator(str(note.get("lang") or "en"))("job_interrupted"))

    async def result_markup(self, tr: Translator, rid: str, spec: dict[str, Any],
                            more: bool = False) -> InlineKeyboardMarkup:
        """The buttons under result ``rid`` made by ``spec`` (its first or its "More" view)."""
        own = bool(spec.get("style"))
        return result_keyboard(tr, rid, await self._sizes(), spec["sizes"][0],
                               spec.get("controls"), own_style=own,
                               learn_seconds=await self._learn_offer() if own else None,
                               more=more)

    async def _learn_offer(self) -> int | None:
        """About how long learning an uploaded style takes, when this server can learn (its
        presets answer has a ``learned`` part, and it has not said it cannot lately)."""
        if self.learn is None or not self.learn.available:
            return None
        try:
            info = await self.ts.server_info()
        except ts.TorchServeError:
            return None
        return self.settings.learn_seconds if "learned" in info.extra else None

    async def _sizes(self) -> list[int]:
        try:
            return list((await self.ts.server_info()).sizes)
        except ts.TorchServeError:
            return []

    async def _say(self, chat_id: int, text: str) -> None:
        try:
            await self.bot.send_message(chat_id, text)
        except TelegramAPIError as exc:
            log.warning("message to a user not sent: %s", type(exc).__name__)

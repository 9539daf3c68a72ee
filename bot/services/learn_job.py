"""Learning the style picture of a result, as a job of the user's: queued with the others (one
job per user, ``/cancel`` and its button work, a replica's death is reported), shown in a
status message that counts the steps (edited at most every ``STATUS_INTERVAL``, as clips
are), and answered with the new style's name and a button to apply it.

Every failure ends in a message in the user's language: the server cannot learn (the button
is then hidden for a while, :class:`~bot.services.learning.LearnClient`), not an image, the
user's store is full (how many styles they have, and that deleting one makes room), the fit
was cancelled, the server busy, down or too slow.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext

from bot import learnflow
from bot.keyboards import cancel_keyboard, learned_done_keyboard, my_styles_shortcut
from bot.services import torchserve as ts
from bot.services.jobs import SHUTDOWN, Job, QueueFull, ShuttingDown, UserBusy
from bot.services.learning import LEARNING_UNAVAILABLE, LearnClient
from bot.services.runner import JobFailure, JobRunner
from bot.services.status import StatusMessage
from bot.texts import Translator

log = logging.getLogger(__name__)

NAME_TRIES = 3  # another request may take the auto-generated name first
# the server's error codes of a learn request -> the text explaining each
LEARN_ERRORS = {"not_an_image": "learn_not_image", "corrupt_image": "learn_not_image",
                "too_large": "learn_too_large", "cancelled": "learn_cancelled",
                "store_not_writable": "learn_store_not_writable"}


class LearnJobs:
    """Starts learn jobs through the bot's queue and job runner (downloads, messages)."""

    def __init__(self, runner: JobRunner, client: LearnClient, seconds: int):
        self.runner = runner
        self.client = client
        self.seconds = seconds  # about how long a fit takes, as the button says

    async def start(self, *, chat_id: int, user_id: int, tr: Translator, state: FSMContext,
                    style: dict[str, Any]) -> Job | None:
        """Queue learning the uploaded style ``style`` (an image reference) for the user."""
        runner = self.runner
        status = StatusMessage(runner.bot, chat_id, cancel_keyboard(tr),
                               runner.settings.status_interval)

        async def on_position(position: int) -> None:
            await status.set(tr("queued", position=position) if position > 0
                             else tr("learn_running", seconds=self.seconds))

        async def on_cancel(reason: str) -> None:
            if reason == SHUTDOWN:
                await status.close()
                await runner._say(chat_id, tr("shutdown_cancelled"))
            elif not await status.close(tr("cancelled")):
                await runner._say(chat_id, tr("cancelled"))

        job = Job(user_id=user_id, run=self._runner(chat_id, user_id, tr, style, status),
                  on_position=on_position, on_cancel=on_cancel,
                  payload={"spec": {"learn": True}, "note": {"chat_id": chat_id,
                                                             "lang": tr.lang}},
                  heavy=True)  # a minute of the learn worker: photos pass it in the queue
        try:
            position = await runner._submit(job)
        except UserBusy:
            await runner._say(chat_id, tr("already_busy"))
            return None
        except QueueFull:
            await runner._say(chat_id, tr("queue_full"))
            return None
        except ShuttingDown:
            await runner._say(chat_id, tr("shutting_down"))
            return None
        position = job.payload.get("_position", position)
        await status.show(tr("queued", position=position) if position > 0
                          else tr("learn_running", seconds=self.seconds))
        return job

    def _runner(self, chat_id: int, user_id: int, tr: Translator, style: dict[str, Any],
                status: StatusMessage):
        async def run(job: Job) -> None:
            timeout = self.runner.settings.ts_learn_timeout + 60.0
            try:
                async with asyncio.timeout(timeout):
                    await self._learn(chat_id, user_id, tr, style, status)
            except JobFailure as failure:
                await self._fail(chat_id, tr, status, failure)
            except TimeoutError:
                await self._fail(chat_id, tr, status, JobFailure("learn_timeout", "timeout"))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("learn job %s crashed", job.id)
                await self._fail(chat_id, tr, status, JobFailure("err_internal", "bug"))
            finally:
                if not asyncio.current_task().cancelling():
                    await status.close()
        return run

    async def _learn(self, chat_id: int, user_id: int, tr: Translator, style: dict[str, Any],
                     status: StatusMessage) -> None:
        owner = learnflow.owner_of(user_id)
        picture = await self.runner._download(style, "style")

        async def progress(step: int, steps: int) -> None:
            await status.set(tr("learn_progress", step=step, steps=steps,
                                pct=round(100 * step / max(1, steps))))

        token = secrets.token_urlsafe(16)
        for attempt in range(NAME_TRIES):
            mine = await self._my_styles(owner)
            name = learnflow.next_name(mine.names)
            try:
                learned = await self.client.learn(picture, name, owner, on_progress=progress,
                                                  cancel_token=token)
                break
            except ts.TorchServeError as exc:
                if exc.code == "name_exists" and attempt + 1 < NAME_TRIES:
                    continue
                raise self._failure(exc, len(mine.names), mine.max_per_owner) from None
        await status.close()
        try:
            await self.runner.bot.send_message(
                chat_id, tr("learn_done", name=learned.name, seconds=round(learned.seconds)),
                reply_markup=learned_done_keyboard(tr, learned.name))
        except TelegramAPIError as exc:
            log.warning("learn result not sent: %s", type(exc).__name__)

    async def _my_styles(self, owner: str):
        try:
            return await self.client.my_styles(owner)
        except ts.TorchServeError as exc:
            raise self._failure(exc, 0, 0) from None

    def _failure(self, exc: ts.TorchServeError, count: int, limit: int) -> JobFailure:
        log.info("learning a style failed: %r", exc)
        if exc.code == LEARNING_UNAVAILABLE or (exc.status == 404 and not exc.code):
            return JobFailure("learn_unavailable", "learn_unavailable")
        if exc.code == "store_full":
            return JobFailure("learn_store_full", "store_full", count=count,
                              limit=limit or count)
        if exc.code in LEARN_ERRORS:
            return JobFailure(LEARN_ERRORS[exc.code], exc.code)
        if exc.kind == ts.BUSY:
            return JobFailure("learn_busy", "busy")
        if exc.kind == ts.DOWN:
            return JobFailure("err_down", "down", attempts=exc.attempts)
        if exc.kind == ts.TIMEOUT:
            return JobFailure("learn_timeout", "timeout")
        if exc.code == ts.INVALID_KEY:
            return JobFailure("err_auth", "auth")
        return JobFailure("learn_failed", exc.code or exc.kind)

    async def _fail(self, chat_id: int, tr: Translator, status: StatusMessage,
                    failure: JobFailure) -> None:
        metrics = self.runner.metrics
        if metrics is not None:
            metrics.failed(f"learn_{failure.reason}")
        await status.close()
        values = dict(failure.values)
        if "which" in values:
            values["which"] = tr(f"which_{values['which'] or 'unknown'}")
        markup = my_styles_shortcut(tr) if failure.key == "learn_store_full" else None
        try:
            await self.runner.bot.send_message(chat_id, tr(failure.key, **values),
                                               reply_markup=markup)
        except TelegramAPIError as exc:
            log.warning("learn failure not sent: %s", type(exc).__name__)

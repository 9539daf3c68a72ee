"""Faults on the bot's side (issue 15, section 3): Telegram's flood control (429) on sending a
result, Redis going away and coming back, the bot process killed mid-job.

The scenarios run the real bot process (``python -m bot``, fakes/bot_process.py) against
the fake Bot API and the fake TorchServe: the faults are in Telegram, Redis and the bot, so a
real TorchServe would only make them slower. The flood middleware's bounds have unit tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import EditMessageText, SendAnimation, SendChatAction, SendPhoto
from bot_helpers import TOKEN, bot_env, jpeg
from tcp_proxy import FakeRedisBehindProxy

from bot.middlewares import flood
from fakes.bot_process import BotProcess

WAIT = 60.0  # the machine is shared with a training run


@pytest.fixture
async def bot_proc(tg, fts, tmp_path):
    """``await bot_proc(**env)`` starts ``python -m bot`` against the fakes and waits until it
    polls; at the end it must stop cleanly (SIGTERM), without a traceback or its token."""
    started: list[BotProcess] = []

    async def start(**env: str) -> BotProcess:
        full = bot_env(tg.api_url, fts.url, LOG_LEVEL="DEBUG", **env)
        proc = BotProcess(full, tmp_path / f"bot{len(started)}.log")
        started.append(proc)
        await proc.start_polling(tg, WAIT)
        return proc

    yield start
    for proc in started:
        await proc.stop_cleanly(TOKEN)


def refused(tg, method: str, chat_id: int) -> list:
    return [e for e in tg.calls(method, chat_id) if isinstance(e.result, dict)
            and "retry_after" in e.result]


def delivered(tg, method: str, chat_id: int) -> list:
    return [e for e in tg.calls(method, chat_id) if isinstance(e.result, dict)
            and "message_id" in e.result]


async def gallery_then_use(user, tg, flood_photos: list[int]) -> None:
    """The gallery the bot shows after the photo; once its preview is delivered, flood the
    next sendPhoto calls and use candy: the next photo sent is the result."""
    gallery = await user.expect(lambda s: s.photo is not None, WAIT)
    tg.flood["sendPhoto"] = list(flood_photos)
    await user.press_data(gallery, "pre:use:0:candy")


# --- Telegram answers 429 --------------------------------------------------------------------


@pytest.mark.integration
async def test_a_result_refused_with_429_is_sent_again_after_retry_after_exactly_once(
        bot_proc, tg, fts):
    await bot_proc()
    user = tg.user(701)
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    await gallery_then_use(user, tg, [1, 1])
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    assert result.photo is not None
    flooded = refused(tg, "sendPhoto", user.chat_id)
    assert len(flooded) == 2  # both 429s were met, and the third attempt went through
    sent = delivered(tg, "sendPhoto", user.chat_id)
    assert len([e for e in sent if " px" in (e.params.get("caption") or "")]) == 1
    # each retry waited the retry_after Telegram asked for
    assert flooded[1].at - flooded[0].at >= 0.95
    assert sent[-1].at - flooded[1].at >= 0.95
    assert not [s for s in user.sent() if "went wrong" in s.text or "slow down" in s.text]
    assert len(fts.stylized) == 1  # the picture was made once, only the upload was repeated
    print(f"\n429 x2 on sendPhoto: delivered {sent[-1].at - flooded[0].at:.2f} s after the "
          f"first refusal")

    tg.flood["sendDocument"] = [1]
    await user.press(result, "Full-quality")
    doc = await user.expect(lambda s: s.method == "sendDocument", WAIT)
    assert doc.document == result.photo
    assert len(refused(tg, "sendDocument", user.chat_id)) == 1
    assert len(delivered(tg, "sendDocument", user.chat_id)) == 1


@pytest.mark.integration
async def test_a_flood_wait_longer_than_the_bound_is_explained_not_an_internal_error(
        bot_proc, tg, fts):
    await bot_proc()
    user = tg.user(702, "Ru", "ru")
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "фото" in s.text.lower(), WAIT)
    await gallery_then_use(user, tg, [3600])  # an hour: over the 60 s the bot waits at most
    notice = await user.expect(lambda s: "Telegram попросил" in s.text, WAIT)
    assert "/result" in notice.text
    assert len(refused(tg, "sendPhoto", user.chat_id)) == 1  # given up at once, no wait
    assert not [s for s in user.sent() if "пошло не так" in s.text]
    await user.send("/result")  # flood control over: the photos are still there
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    assert result.photo is not None


# --- the flood middleware on its own ---------------------------------------------------------


class Calls:
    """A ``make_request`` that answers 429 with the given waits, then succeeds."""

    def __init__(self, waits: list[int]):
        self.waits = list(waits)
        self.count = 0

    async def __call__(self, bot, method):
        self.count += 1
        if self.waits:
            raise TelegramRetryAfter(method, "Too Many Requests", self.waits.pop(0))
        return "sent"


@pytest.fixture
def no_sleep(monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(flood.asyncio, "sleep", sleep)
    return slept


async def test_the_flood_middleware_waits_as_asked_within_its_bounds(no_sleep):
    bot = Bot(TOKEN)
    middleware = flood.RetryAfterMiddleware(tries=3, max_wait=10)
    animation = SendAnimation(chat_id=1, animation="file-id")
    calls = Calls([2, 3])
    assert await middleware(calls, bot, animation) == "sent"
    assert calls.count == 3 and no_sleep == [2.0, 3.0]

    calls = Calls([1, 1, 1])  # a third 429: out of tries
    with pytest.raises(TelegramRetryAfter):
        await middleware(calls, bot, SendPhoto(chat_id=1, photo="file-id"))
    assert calls.count == 3

    no_sleep.clear()
    calls = Calls([8, 8])  # the second wait would pass max_wait: given up before it
    with pytest.raises(TelegramRetryAfter):
        await middleware(calls, bot, animation)
    assert calls.count == 2 and no_sleep == [8.0]


async def test_cosmetic_calls_are_not_retried(no_sleep):
    middleware = flood.RetryAfterMiddleware()
    for method in (EditMessageText(chat_id=1, message_id=2, text="status"),
                   SendChatAction(chat_id=1, action="typing")):
        calls = Calls([1])
        with pytest.raises(TelegramRetryAfter):
            await middleware(calls, Bot(TOKEN), method)
        assert calls.count == 1 and no_sleep == []


# --- Redis down with REDIS_URL set -----------------------------------------------------------


@pytest.fixture
async def redis_box():
    box = FakeRedisBehindProxy()
    await box.start()
    yield box
    await box.close()


@pytest.mark.integration
async def test_redis_down_users_are_told_and_the_bot_recovers_when_it_returns(
        bot_proc, tg, fts, redis_box):
    proc = await bot_proc(REDIS_URL=redis_box.url)
    user = tg.user(711)
    await user.send_photo(jpeg(300, 200))
    got = await user.expect(lambda s: "Got the photo" in s.text, WAIT)

    await redis_box.proxy.down()
    went_down = time.monotonic()
    await user.send("/presets")
    notice = await user.expect(lambda s: "can't reach my memory" in s.text, WAIT)
    told_after = time.monotonic() - went_down
    query = await user.press_data(got, "pre:use:0:candy")  # a button during the outage
    answer = await user.callback_answer(query, WAIT)
    assert answer["answered"] and answer["text"] is None  # answered, the notice not repeated
    assert proc.alive and "/presets" not in notice.text

    await redis_box.proxy.up()
    came_back = time.monotonic()
    await user.send("/presets")  # the first update after Redis returns is served
    gallery = await user.expect(lambda s: s.photo is not None, WAIT)
    await user.press_data(gallery, "pre:use:0:candy")
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    recovered_after = time.monotonic() - came_back
    assert result.photo is not None  # the photo sent before the outage was kept in Redis
    assert sum("can't reach my memory" in s.text for s in user.sent()) == 1
    print(f"\nredis down: told after {told_after:.2f} s; back: result after "
          f"{recovered_after:.2f} s")


# --- the bot process killed mid-job (Redis storage) -----------------------------------------


@pytest.mark.integration
async def test_a_job_lost_with_a_killed_bot_is_reported_after_the_restart(bot_proc, tg, fts,
                                                                          redis_box):
    from redis.asyncio import Redis

    env = {"REDIS_URL": redis_box.url, "REPLICA_HEARTBEAT": "0.5"}
    first = await bot_proc(**env)
    user = tg.user(721, "Killed", "en")
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    fts.script.gate = asyncio.Event()  # the stylization hangs: the job is mid-flight
    await gallery_then_use(user, tg, [])
    await asyncio.wait_for(fts.started.wait(), WAIT)
    host, port = redis_box.server.server_address[:2]
    redis = Redis(host=host, port=port)
    try:
        assert await redis.exists("image-styling:bot:job:721")  # the job's record
        os.killpg(first.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.to_thread(first.proc.wait, 10)
        assert await redis.exists("image-styling:bot:lock:721")  # its lock outlives it
    finally:
        await redis.aclose()
    fts.script.gate.set()  # TorchServe answers, but nobody is listening any more
    assert not [s for s in user.sent() if s.method == "sendPhoto" and " px" in s.text]

    await bot_proc(**env)
    polling = time.monotonic()
    notice = await user.expect(lambda s: "restarted while your job" in s.text, WAIT)
    told_after, since_kill = time.monotonic() - polling, time.monotonic() - killed
    assert "/result" in notice.text
    await user.send("/result")  # the lock is gone and the photo and style are kept
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    assert result.photo is not None
    assert sum("restarted while your job" in s.text for s in user.sent()) == 1
    assert not [s for s in user.sent() if "already" in s.text]
    print(f"\nbot killed mid-job: user told {since_kill:.1f} s after the kill, "
          f"{told_after:.1f} s after the new process began polling")

"""Unit tests of the bot's clip parts (issue 14): clip references and limits, the heavy-job
cap of the queue, the clip's rate-limit cost, and the streamed clip answer of the client."""

from __future__ import annotations

import base64
import json

import pytest
from aiogram.types import Message
from aiohttp import web
from job_helpers import Work, until

from bot import clipflow
from bot.flow import Rejection
from bot.middlewares.access import RateLimitMiddleware
from bot.services import torchserve as ts
from bot.services.jobs import Job, JobQueue


def _message(**content) -> Message:
    return Message.model_validate({"message_id": 1, "date": 0,
                                   "chat": {"id": 5, "type": "private"}, **content})


CLIP = {"file_id": "F", "file_unique_id": "U", "duration": 4, "width": 320, "height": 240,
        "file_size": 1000}


def test_clip_refs_for_every_kind_telegram_sends() -> None:
    # Telegram sets ``document`` on an animation too: it is still an animation
    animation = _message(animation=CLIP, document={"file_id": "F", "file_unique_id": "U"})
    assert clipflow.clip_ref(animation, 10**6)["media"] == "animation"
    assert clipflow.clip_ref(_message(video=CLIP), 10**6)["media"] == "video"
    note = clipflow.clip_ref(_message(video_note={"file_id": "F", "file_unique_id": "U",
                                                  "duration": 3, "length": 240}), 10**6)
    assert (note["media"], note["width"], note["height"]) == ("video_note", 240, 240)
    gif = _message(document={"file_id": "F", "file_unique_id": "U", "file_name": "a.gif",
                             "mime_type": "image/gif"})
    assert clipflow.is_clip_document(gif) and clipflow.clip_ref(gif, 10**6)["media"] == \
        "document"
    photo_doc = _message(document={"file_id": "F", "file_unique_id": "U",
                                   "file_name": "a.png", "mime_type": "image/png"})
    assert not clipflow.is_clip_message(photo_doc) and clipflow.clip_ref(photo_doc, 1) is None
    assert isinstance(clipflow.clip_ref(_message(video=CLIP), 100), Rejection)


def test_limits_come_from_the_server_and_are_checked_before_download() -> None:
    limits = clipflow.limits_of({"clips": {"max_seconds": 10, "max_fps": 12, "size": 360,
                                           "unrelated": "x"}})
    assert (limits["max_seconds"], limits["max_fps"], limits["size"]) == (10, 12, 360)
    assert clipflow.limits_of(None) == clipflow.DEFAULT_LIMITS
    ref = {"duration": 12, "bytes": 10}
    refusal = clipflow.over_limits(ref, limits)
    assert refusal.key == "clip_too_long" and refusal.values["max_seconds"] == "10"
    assert clipflow.over_limits({"duration": 5, "bytes": 10}, limits) is None
    assert clipflow.over_limits({"duration": 5, "bytes": 10**9}, limits).key == "clip_too_big"
    assert clipflow.expected_frames({"duration": 5}, limits) == 60
    assert clipflow.expected_frames({"duration": 0}, limits) == 120  # unknown: the cap


async def test_one_heavy_job_at_a_time_and_photos_pass_a_waiting_clip() -> None:
    queue = JobQueue(concurrency=2, max_heavy=1)
    queue.start()
    clip1, clip2, photo = Work(), Work(), Work()
    jobs = [Job(1, clip1.run, heavy=True), Job(2, clip2.run, heavy=True), Job(3, photo.run)]
    positions = [await queue.submit(j) for j in jobs]
    assert positions[1] == 1  # the second clip waits behind the first, a worker idle or not
    await clip1.started.wait()
    await photo.started.wait()  # the photo overtook the waiting clip
    assert not clip2.started.is_set()
    clip1.release.set()
    await clip2.started.wait()
    clip2.release.set()
    photo.release.set()
    await until(lambda: all(j.done.is_set() for j in jobs))
    await queue.shutdown(1)


def test_a_clip_costs_more_rate_limit_tokens() -> None:
    limiter = RateLimitMiddleware(burst=10, per_minute=0.1, clip_cost=8)
    assert limiter.allow(1, now=0.0, cost=limiter.clip_cost)
    assert not limiter.allow(1, now=0.0, cost=limiter.clip_cost)  # 2 tokens left
    assert limiter.allow(1, now=0.0) and limiter.allow(1, now=0.0)
    assert RateLimitMiddleware(burst=5, clip_cost=50).clip_cost == 5  # one clip always fits


@pytest.fixture
async def clip_server(unused_tcp_port):
    """A stand-in clip model: progress lines, then the clip or an in-band error."""
    answers: list[list[bytes]] = []

    async def predict(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        assert form["progress"] == "true" and request.path == "/predictions/clips"
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        for chunk in answers.pop(0):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/predictions/{model}", predict)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    client = ts.TorchServeClient(f"http://127.0.0.1:{unused_tcp_port}", "msgnet",
                                 clip_model="clips", retries=1)
    yield client, answers
    await client.close()
    await runner.cleanup()


async def test_the_client_reads_progress_then_a_big_clip(clip_server) -> None:
    client, answers = clip_server
    body = bytes(range(256)) * 2000  # 512 kB: past aiohttp's 64 kB line limit
    final = json.dumps({"status": 200, "content_type": "video/mp4", "clip": "frames=8;size=4x4",
                        "body": base64.b64encode(body).decode()}).encode() + b"\n"
    answers.append([b'{"done": 4, "total": 8}\n{"done"', b': 8, "total": 8}\n',
                    final[:1000], final[1000:]])
    seen = []

    async def progress(done, total):
        seen.append((done, total))

    clip = await client.stylize_clip(b"x", style_id="candy", on_progress=progress)
    assert seen == [(4, 8), (8, 8)]
    assert (clip.data, clip.content_type, clip.field("frames")) == (body, "video/mp4", "8")


async def test_an_in_band_error_is_a_client_error(clip_server) -> None:
    client, answers = clip_server
    answers.append([b'{"done": 8, "total": 20}\n',
                    json.dumps({"status": 400, "code": "corrupt_clip", "field": "content",
                                "message": "content: damaged after frame 8"}).encode()])

    async def progress(done, total):
        pass

    with pytest.raises(ts.TorchServeError) as info:
        await client.stylize_clip(b"x", style_id="candy", on_progress=progress)
    assert (info.value.kind, info.value.code, info.value.field) == (ts.CLIENT, "corrupt_clip",
                                                                    "content")


# --- a clip in the rate limit, with and without Redis (issue 14) -------------------------------


async def test_a_clip_spends_as_many_tokens_in_redis_as_in_the_local_bucket() -> None:
    from fakeredis import FakeAsyncRedis, FakeServer

    from bot.services.coordination import Coordinator

    shared = Coordinator(FakeAsyncRedis(server=FakeServer()), lock_ttl=60, replica="a")
    local = RateLimitMiddleware(burst=10, per_minute=1, clip_cost=8)
    costs = [8, 1, 8, 1, 1, 8]  # clip, photo, clip (refused), photo, photo (refused), clip
    in_redis = [await shared.rate_allow(5, 10, 1, now=100.0, cost=c) for c in costs]
    in_memory = [local.allow(5, now=0.0, cost=c) for c in costs]
    assert in_redis == in_memory == [True, True, False, True, False, False]
    # and the middleware hands the clip's cost to Redis, not 1
    limiter = RateLimitMiddleware(burst=10, per_minute=1, clip_cost=8, shared=shared)
    assert await limiter._allowed(6, limiter.clip_cost)
    assert not await limiter._allowed(6, limiter.clip_cost)
    assert await limiter._allowed(6)  # a refused clip spent nothing: 2 tokens left


@pytest.fixture(params=["memory", "redis"])
async def limited_bot(request, tg, fts):
    """An in-process bot polling the fake Bot API with a burst of 10 tokens and a clip costing
    10, its rate limit kept in this process or in (fake) Redis as with several replicas."""
    import asyncio

    from aiogram.fsm.storage.redis import RedisStorage
    from bot_helpers import bot_env
    from fakeredis import FakeAsyncRedis, FakeServer

    from bot.app import create_bot, create_dispatcher, create_services
    from bot.config import load_settings
    from bot.services.coordination import Coordinator

    settings = load_settings(bot_env(tg.api_url, fts.url, RATE_LIMIT_BURST="10",
                                     RATE_LIMIT_PER_MINUTE="0.5", CLIP_RATE_COST="10"),
                             dotenv=None)
    bot = create_bot(settings)
    storage, coordination = None, None
    if request.param == "redis":
        server = FakeServer()
        coordination = Coordinator(FakeAsyncRedis(server=server), lock_ttl=60, replica="a")
        storage = RedisStorage(FakeAsyncRedis(server=server))
    services = create_services(settings, bot, coordination=coordination)
    dp = create_dispatcher(settings, services, storage)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False,
                                                   polling_timeout=settings.polling_timeout))
    await tg.polling_started()
    yield dp
    await dp.stop_polling()
    await polling


async def test_a_clip_over_the_rate_limit_gets_the_too_fast_notice(limited_bot, tg) -> None:
    from bot_helpers import jpeg

    user = tg.user(611)
    await user.send_photo(jpeg(120, 80))  # 1 token of 10
    await user.expect(lambda s: "Got the photo" in s.text)
    await user.send_clip("video", b"not decoded: refused before", duration=2, width=64,
                         height=48)  # costs 10: refused
    notice = await user.expect(lambda s: "too fast" in s.text)
    await user.send("/help")  # 1 token: still allowed, the refused clip spent nothing
    await user.expect(lambda s: "How it works" in s.text)
    texts = [s.text for s in user.sent()]
    assert not [t for t in texts if "Got the clip" in t], texts  # the clip was not taken
    assert notice.message_id < user.sent()[-1].message_id


async def test_a_cancelled_clip_closes_its_request_to_the_server(unused_tcp_port) -> None:
    """/cancel cancels the job's task; the streamed clip request must not linger: the bot
    closes the connection, so the server's next progress write finds the client gone."""
    import asyncio

    progress_seen, client_gone = asyncio.Event(), asyncio.Event()

    async def predict(request: web.Request) -> web.StreamResponse:
        await request.post()
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        done = 0
        try:
            while done < 10_000:  # a long clip: a line every 20 ms
                done += 1
                await resp.write(json.dumps({"done": done, "total": 10_000}).encode() + b"\n")
                await asyncio.sleep(0.02)
        except (ConnectionError, OSError):
            client_gone.set()
        return resp

    app = web.Application()
    app.router.add_post("/predictions/{model}", predict)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    client = ts.TorchServeClient(f"http://127.0.0.1:{unused_tcp_port}", "msgnet",
                                 clip_model="clips", retries=1)

    async def progress(done, total):
        progress_seen.set()

    try:
        task = asyncio.create_task(client.stylize_clip(b"x", style_id="candy",
                                                       on_progress=progress))
        await asyncio.wait_for(progress_seen.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(client_gone.wait(), 5)  # the server saw the request end
    finally:
        await client.close()
        await runner.cleanup()


# --- a cancelled clip is stopped on the server too -----------------------------------------------

TOKEN_RE = r"[A-Za-z0-9_-]{22}"  # secrets.token_urlsafe(16)


async def clip_sent(make_bot, tg, user_id: int):
    """A polling in-process bot, and a user who picked a preset and sent a clip: the user and
    the clip's status message ("Styling your clip")."""
    from test_bot_component import pick_preset

    await make_bot(polling=True)
    user = tg.user(user_id)
    await pick_preset(user)
    await user.expect(lambda s: "send" in s.text.lower() and "photo" in s.text.lower())
    await user.send_clip("video", b"\x00\x00\x00\x18ftypmp42 not decoded by the fake",
                         duration=2, width=64, height=48)
    return user, await user.expect(lambda s: "Styling your clip" in s.text)


async def test_cancel_of_a_running_clip_tells_the_server_with_the_clips_token(
        make_bot, tg, fts, caplog) -> None:
    """/cancel while the clip streams: the bot closes the request and sends ``cancel=<the
    clip's cancel_token>`` to the photo model, where the clip worker is not busy; the next clip
    gets a token of its own."""
    import logging
    import re

    from bot_helpers import TOKEN

    caplog.set_level(logging.DEBUG)
    fts.script.clip_frames = 10**6  # runs until stopped
    user, status = await clip_sent(make_bot, tg, 621)
    await until(lambda: fts.clips, 10)
    token = fts.clips[0].get("cancel_token", "")
    assert re.fullmatch(TOKEN_RE, token), fts.clips[0]
    assert fts.clips[0]["progress"] == "true" and fts.cancels == []
    await user.send("/cancel")
    await user.expect_edit(status.message_id, lambda s: s.text == "❌ Cancelled.")
    await until(lambda: fts.cancels and fts.clip_ends, 10)
    assert fts.cancels == [("msgnet", token)]  # the photo model, the clip's own token
    assert fts.clip_ends in (["gone"], ["cancelled"])  # it did not run to its end

    fts.script.clip_frames = 16  # the next clip runs to its end: no cancel sent
    await user.send_clip("video", b"\x00\x00\x00\x18ftypmp42 another one", duration=2,
                         width=64, height=48)
    await user.expect(lambda s: s.method == "sendAnimation", 15)
    assert len(fts.clips) == 2 and re.fullmatch(TOKEN_RE, fts.clips[1]["cancel_token"])
    assert fts.clips[1]["cancel_token"] != token
    assert fts.cancels == [("msgnet", token)] and fts.clip_ends[1] == "done"
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text


async def failing_clip(fts, token: str, **client_kw) -> tuple[ts.TorchServeError, list[int]]:
    """A clip call to the fake's clip model that fails: its error and the progress it saw,
    once the client is closed (which waits for the cancels it sent)."""
    client = ts.TorchServeClient(fts.url, "msgnet", key=ts.InferenceKey("inference-key"),
                                 clip_model="msgnet_clip", **client_kw)
    seen: list[int] = []

    async def progress(done, total):
        seen.append(done)

    try:
        with pytest.raises(ts.TorchServeError) as info:
            await client.stylize_clip(b"x", style_id="candy", cancel_token=token,
                                      on_progress=progress)
    finally:
        await client.close()
    return info.value, seen


async def test_a_clip_that_times_out_is_cancelled_on_the_server(fts) -> None:
    fts.script.clip_frames = 10**6
    error, seen = await failing_clip(fts, "t" * 22, clip_timeout=0.5, retries=1)
    assert error.kind == ts.TIMEOUT and seen  # it was streaming when it timed out
    assert fts.cancels == [("msgnet", "t" * 22)]


async def test_a_failing_cancel_is_logged_not_raised(fts, unused_tcp_port, caplog) -> None:
    """Refused (an older server answers 4xx), or nobody listening: False and a warning; a
    cancelled clip call still ends in CancelledError, and close() waits for its cancel."""
    import asyncio
    import logging

    caplog.set_level(logging.DEBUG, logger="bot.services.torchserve")
    down = ts.TorchServeClient(f"http://127.0.0.1:{unused_tcp_port}", "msgnet", retries=2,
                               retry_delay=0.01)
    refused = ts.TorchServeClient(fts.url, "msgnet", key=ts.InferenceKey("wrong-key"),
                                  retries=1)
    try:
        assert await down.cancel_clip("d" * 22) is False
        assert await refused.cancel_clip("r" * 22) is False
        assert fts.cancels == []
        assert caplog.text.count("clip cancel not delivered to TorchServe") == 2
        assert "(down, HTTP None" in caplog.text and "(server, HTTP 400, invalid_key" in caplog.text

        task = asyncio.create_task(down.stylize_clip(b"x", style_id="candy",
                                                     cancel_token="c" * 22))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(down._cancels) == 1
    finally:
        await down.close()
        await refused.close()
    assert not down._cancels  # close() let the cancel finish (and fail) first
    assert caplog.text.count("clip cancel not delivered to TorchServe") == 3


# --- a clip whose worker dies while it streams ---------------------------------------------------
# TorchServe 0.12 has sent the 200 and the first progress lines; when the clip worker dies it
# drops the connection without the chunked answer's last chunk (no error line, no 5xx):
# measured in tests/integration/test_server_faults.py; the fake does the same.


async def test_a_clip_stream_cut_by_a_dying_worker_is_a_stream_cut_error(fts) -> None:
    """Not retried (a clip is minutes of work, and what killed the worker may be the clip),
    and the clip is cancelled on the server in case only the connection was lost."""
    fts.script.clip_frames, fts.script.clip_cut_after = 10**6, 2
    error, seen = await failing_clip(fts, "k" * 22, retries=3, retry_delay=0.01)
    assert (error.kind, error.code) == (ts.SERVER, ts.STREAM_CUT)
    assert "after 2 progress lines (16 of 1000000 frames)" in error.message
    assert seen == [8, 16] and fts.clip_ends == ["cut"] and len(fts.clips) == 1
    assert fts.cancels == [("msgnet", "k" * 22)]


@pytest.mark.parametrize("tail", [b"", b'{"status": 200, "content_type": "video/mp4", "bo'],
                         ids=["no final line", "half a final line"])
async def test_a_clip_stream_that_ends_without_its_final_line_is_a_stream_cut(
        clip_server, tail) -> None:
    """Even when the chunked answer itself is complete (a proxy that ends it cleanly)."""
    client, answers = clip_server
    answers.append([b'{"done": 8, "total": 20}\n', tail])

    async def progress(done, total):
        pass

    with pytest.raises(ts.TorchServeError) as info:
        await client.stylize_clip(b"x", style_id="candy", on_progress=progress)
    assert (info.value.kind, info.value.code) == (ts.SERVER, ts.STREAM_CUT)


async def test_a_clip_cut_by_a_dying_worker_tells_the_user_and_frees_the_clip_slot(
        make_bot, tg, fts, caplog) -> None:
    """The status message goes, the user is told the server stopped while making the clip
    (not "something went wrong on my side"), no traceback is logged, and /result makes the
    same clip again once the server is back."""
    import logging

    caplog.set_level(logging.INFO)
    fts.script.clip_frames, fts.script.clip_cut_after = 10**6, 1
    user, status = await clip_sent(make_bot, tg, 631)
    told = await user.expect(lambda s: "stopped while making your clip" in s.text)
    assert "/result" in told.text and fts.clip_ends == ["cut"]
    await user.expect_deleted(status.message_id)
    assert "crashed" not in caplog.text and "Traceback" not in caplog.text

    fts.script.clip_frames, fts.script.clip_cut_after = 16, None  # the worker is back
    await user.send("/result")
    await user.expect(lambda s: s.method == "sendAnimation", 15)
    assert fts.clip_ends == ["cut", "done"] and len(fts.clips) == 2

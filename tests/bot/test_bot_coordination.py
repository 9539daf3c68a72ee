"""Unit tests of the Redis coordination of several bot replicas (``REDIS_URL`` set), against
fakeredis: two job queues ("replicas") sharing one fake Redis server behave as one for each
user: one job in flight, /cancel from anywhere, results fetched anywhere, one rate limit."""

from __future__ import annotations

import asyncio

import pytest
from bot_helpers import TOKEN
from fakeredis import FakeAsyncRedis, FakeServer
from job_helpers import Work, until

from bot.app import Services, create_coordination, create_services
from bot.config import load_settings
from bot.middlewares.access import RateLimitMiddleware
from bot.services.coordination import Coordinator
from bot.services.jobs import CANCELLED, DONE, USER, JobQueue, UserBusy


def coordinator(server: FakeServer, replica: str, **kwargs) -> Coordinator:
    return Coordinator(FakeAsyncRedis(server=server), lock_ttl=60, replica=replica, **kwargs)


@pytest.fixture
async def replicas():
    """Two started job queues, "a" and "b", coordinated through one fake Redis."""
    server = FakeServer()
    made: list[JobQueue] = []
    for name in ("a", "b"):
        queue = JobQueue(concurrency=1, coordination=coordinator(server, name))
        queue.start()
        await queue.start_coordination()
        made.append(queue)
    yield made
    for queue in made:
        await queue.shutdown(0.5)
        await queue.coordination.close()


async def test_a_second_job_of_the_same_user_is_refused_on_another_replica(replicas):
    a, b = replicas
    work = Work()
    first = work.job(1)
    await a.submit(first)
    await work.started.wait()
    with pytest.raises(UserBusy):
        await b.submit(Work().job(1))
    assert b.get(1) is None  # refused before it was queued
    other = Work()
    other.release.set()
    done = other.job(2)
    await b.submit(done)  # other users are not affected
    await done.done.wait()
    assert done.state == DONE
    work.release.set()
    await first.done.wait()  # the lock goes with the job
    again = Work()
    again.release.set()
    job = again.job(1)
    await b.submit(job)
    await job.done.wait()
    assert job.state == DONE and await b.coordination.holder(1) is None


async def test_cancel_on_one_replica_cancels_the_job_running_on_the_other(replicas):
    a, b = replicas
    work = Work()
    job = work.job(1)
    await a.submit(job)
    await work.started.wait()
    assert await b.coordination.holder(1) == "a"
    assert await b.cancel_anywhere(1) is True
    await asyncio.wait_for(job.done.wait(), 5)
    await until(lambda: work.cancelled)
    assert job.state == CANCELLED and job.task.cancelled()
    assert work.cancelled == [USER]  # the user is told once, by the replica that ran it
    assert await b.coordination.holder(1) is None
    assert await b.cancel_anywhere(1) is False  # nothing left to cancel anywhere
    assert work.cancelled == [USER]


async def test_cancel_from_another_replica_reaches_a_queued_job(replicas):
    a, b = replicas
    busy, waiting = Work(), Work()
    await a.submit(busy.job(1))
    queued = waiting.job(2)
    assert await a.submit(queued) == 1
    assert await b.cancel_anywhere(2)
    await asyncio.wait_for(queued.done.wait(), 5)
    await until(lambda: waiting.cancelled)
    assert queued.state == CANCELLED and not waiting.started.is_set()
    assert busy.cancelled == [] and a.get(1) is not None
    busy.release.set()


async def test_a_cancel_meant_for_a_finished_job_spares_the_users_next_one(replicas):
    a, _ = replicas
    work = Work()
    job = work.job(1)
    await a.submit(job)
    await work.started.wait()
    assert await a._cancel_requested(1, "not-this-job") is False
    assert job.state != CANCELLED
    work.release.set()


async def test_lock_of_a_replica_that_is_gone_is_dropped_on_cancel():
    server = FakeServer()
    gone, alive = coordinator(server, "gone"), coordinator(server, "alive")
    assert await gone.acquire(5, "job1")  # "gone" never listens: it died
    assert not await alive.acquire(5, "job2")
    assert await alive.request_cancel(5) is False  # nobody received it: the job is gone too
    assert await alive.holder(5) is None
    assert await alive.acquire(5, "job2")


async def test_lock_is_released_only_by_its_owner_and_has_a_ttl():
    server = FakeServer()
    a, b = coordinator(server, "a"), coordinator(server, "b")
    assert await a.acquire(1, "j1")
    ttl = await a.redis.pttl(a._lock_key(1))
    assert 0 < ttl <= 60_000
    await b.release(1, "j1")  # another replica's token: no effect
    await a.release(1, "other-job")
    assert await b.holder(1) == "a"
    await a.release(1, "j1")
    assert await b.holder(1) is None


async def test_live_locks_are_refreshed_while_the_job_waits():
    server = FakeServer()
    a = coordinator(server, "a", refresh_every=0.01)

    async def never(user_id, job_id):
        return False

    await a.start(never)
    assert await a.acquire(1, "j1")
    await a.redis.pexpire(a._lock_key(1), 5_000)  # as if most of the TTL had passed
    await asyncio.wait_for(
        _until_async(lambda: _pttl_above(a, 1, 10_000)), 5)
    await a.close()
    assert await coordinator(server, "b").holder(1) is None  # closing releases held locks


async def test_result_stored_by_one_replica_is_fetched_by_another():
    server = FakeServer()
    a = coordinator(server, "a", results_per_user=2, result_max_bytes=100, result_ttl=600)
    b = coordinator(server, "b", results_per_user=2, result_max_bytes=100, result_ttl=600)
    assert await a.put_result(1, "r1", b"x" * 10, "styled_512px.jpg")
    item = await b.get_result(1, "r1")
    assert item is not None and item.data == b"x" * 10 and item.filename == "styled_512px.jpg"
    assert 0 < await b.redis.pttl(b._result_key(1, "r1")) <= 600_000
    assert await b.get_result(2, "r1") is None  # never another user's file
    assert not await a.put_result(1, "big", b"x" * 101, "big.jpg")  # over the size cap
    assert await b.get_result(1, "big") is None
    await a.put_result(1, "r2", b"2", "2.jpg")
    await a.put_result(1, "r3", b"3", "3.jpg")  # only the newest two of a user are kept
    assert await b.get_result(1, "r1") is None and (await b.get_result(1, "r3")).data == b"3"
    await b.forget_results(1)
    assert await a.get_result(1, "r2") is None and await a.get_result(1, "r3") is None


async def test_rate_limit_is_counted_for_all_replicas_together():
    server = FakeServer()
    a, b = coordinator(server, "a"), coordinator(server, "b")
    verdicts = [await c.rate_allow(7, 3, 60, now=100.0) for c in (a, b, a, b)]
    assert verdicts == [True, True, True, False]
    assert await b.rate_allow(8, 3, 60, now=100.0)  # other users are not affected
    assert await a.rate_allow(7, 3, 60, now=103.5)  # the next window

    limiter = RateLimitMiddleware(burst=1, per_minute=60, shared=a)
    other = RateLimitMiddleware(burst=1, per_minute=60, shared=b)
    assert await limiter._allowed(9) and not await other._allowed(9)


async def test_without_redis_everything_degrades_to_this_replica():
    down = Coordinator(FakeAsyncRedis(connected=False), lock_ttl=60, replica="a")
    assert await down.acquire(1, "j1")  # fail open: this replica's own check still holds
    await down.release(1, "j1")
    assert await down.request_cancel(1) is False
    assert await down.put_result(1, "r", b"x", "x.jpg") is False
    assert await down.get_result(1, "r") is None
    await down.forget_results(1)
    assert await down.rate_allow(1, 3, 60) is None
    limiter = RateLimitMiddleware(burst=1, per_minute=60, shared=down)
    assert await limiter._allowed(1) and not await limiter._allowed(1)  # the local bucket

    queue = JobQueue(concurrency=1, coordination=down)
    queue.start()
    work = Work()
    work.release.set()
    job = work.job(1)
    await queue.submit(job)
    await job.done.wait()
    assert job.state == DONE
    await queue.shutdown(0.5)


def test_coordination_only_with_redis_url():
    plain = load_settings({"BOT_TOKEN": TOKEN}, dotenv=None)
    assert create_coordination(plain) is None
    services: Services = create_services(plain, bot=None)
    assert services.queue.coordination is None and services.runner.coordination is None
    shared = load_settings({"BOT_TOKEN": TOKEN, "REDIS_URL": "redis://127.0.0.1:1/0",
                            "JOB_TIMEOUT": "100"}, dotenv=None)
    coordination = create_coordination(shared)
    assert coordination is not None and coordination.lock_ttl_ms == 160_000
    services = create_services(shared, bot=None)
    assert services.queue.coordination is services.runner.coordination is not None


async def _until_async(condition) -> None:
    while not await condition():
        await asyncio.sleep(0.005)


async def _pttl_above(c: Coordinator, user_id: int, ms: int) -> bool:
    return await c.redis.pttl(c._lock_key(user_id)) > ms


# --- two whole bots (webhook replicas) behind one "Service" ------------------------------------


@pytest.fixture
async def two_replicas(tg, fts, unused_tcp_port_factory):
    """Two in-process bots in webhook mode sharing one fake Redis (FSM and coordination); the
    test routes each update to one of them by pointing the fake Telegram's webhook at it."""
    from aiogram.fsm.storage.redis import RedisStorage
    from aiohttp import web
    from bot_helpers import bot_env

    from bot.app import create_bot, create_dispatcher, create_webhook_app

    server = FakeServer()
    urls, runners, services = {}, [], {}
    for name in ("a", "b"):
        port = unused_tcp_port_factory()
        settings = load_settings(bot_env(tg.api_url, fts.url,
                                         WEBHOOK_URL=f"http://127.0.0.1:{port}",
                                         WEBHOOK_SECRET="s3cret-token",
                                         WEBHOOK_PORT=str(port)), dotenv=None)
        bot = create_bot(settings)
        services[name] = create_services(settings, bot, coordination=Coordinator(
            FakeAsyncRedis(server=server), lock_ttl=60, replica=name))
        dp = create_dispatcher(settings, services[name],
                               storage=RedisStorage(FakeAsyncRedis(server=server)))
        runner = web.AppRunner(create_webhook_app(settings, bot, dp))
        await runner.setup()  # the dispatcher's startup: queue, cancel channel
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        urls[name] = settings.webhook_url + settings.webhook_path

    def route(name: str) -> None:
        tg.webhook = {"url": urls[name], "secret_token": "s3cret-token"}

    yield route, services
    for runner in runners:
        await runner.cleanup()


async def test_two_webhook_replicas_act_as_one_bot_for_a_user(two_replicas, tg, fts):
    from test_bot_component import pick_preset, ready, results

    route, services = two_replicas
    user = tg.user(301)
    route("a")
    await ready(user)
    fts.script.gate = asyncio.Event()
    await pick_preset(user, "mosaic")
    status = await user.expect(lambda s: "Styling" in s.text)
    await asyncio.wait_for(fts.started.wait(), 10)
    assert services["a"].queue.get(user.id) is not None

    route("b")  # the user's next updates land on the other replica
    await user.send("/result")
    assert "already" in (await user.expect()).text  # one job in flight, on any replica
    await user.send("/cancel")
    await user.expect_edit(status.message_id, lambda s: s.text == "❌ Cancelled.")
    fts.script.gate.set()
    await user.send("/help")  # answered after the cancel was handled...
    await user.expect(lambda s: "How it works" in s.text)
    texts = [s.text for s in user.sent()]
    assert "There is nothing to cancel." not in texts  # ...and told once, by replica a
    assert texts.count("❌ Cancelled.") <= 1 and results(user) == []
    assert services["a"].queue.get(user.id) is None

    await user.send("/result")  # FSM state is shared: b knows the photo and the preset
    result = await user.expect(lambda s: s.method == "sendPhoto")
    made = len(fts.stylized)
    route("a")
    await user.press(result, "Full-quality")  # b's result, fetched by a from Redis
    doc = await user.expect(lambda s: s.method == "sendDocument")
    assert doc.document == result.photo and len(fts.stylized) == made  # not made again


# --- jobs of a replica that died ---------------------------------------------------------------


async def test_a_dead_replicas_job_is_claimed_once_after_two_sweeps_a_live_ones_never():
    server = FakeServer()
    told: list[tuple[str, int, dict]] = []

    def teller(name):
        async def tell(user_id, note):
            told.append((name, user_id, note))
        return tell

    dead, live = coordinator(server, "dead"), coordinator(server, "live")
    a, b = coordinator(server, "a"), coordinator(server, "b")
    await live.start_recovery(teller("live"), beat=60)  # beats: alive for 3 minutes
    assert await dead.acquire(1, "j1", {"chat_id": -100, "lang": "ru"})  # never beats
    assert await live.acquire(2, "j2", {"chat_id": 2, "lang": "en"})
    assert await a.acquire(3, "j3")  # without a note: no record, nothing to tell

    suspects_a = await a.sweep(teller("a"), {})
    suspects_b = await b.sweep(teller("b"), {})
    assert list(suspects_a) == list(suspects_b) == [a._record_key(1)] and told == []
    assert await a.holder(1) == "dead"  # one sweep is not enough (a Redis blip, a restart)
    await a.sweep(teller("a"), suspects_a)
    await b.sweep(teller("b"), suspects_b)  # too late: a claimed it
    assert told == [("a", 1, {"chat_id": -100, "lang": "ru"})]  # exactly once
    assert await a.holder(1) is None and await a.redis.get(a._record_key(1)) is None
    assert await a.holder(2) == "live" and await a.redis.get(a._record_key(2)) is not None
    assert await b.acquire(1, "j4")  # the user can run a job again

    await live.release(2, "j2")  # a job that ends takes its record with it
    assert await a.redis.get(a._record_key(2)) is None
    await live.close()
    assert not await a.redis.exists(a._alive_key("live"))  # a closed replica stops beating


async def test_a_job_that_ends_between_two_sweeps_is_not_reported():
    server = FakeServer()
    told = []

    async def tell(user_id, note):
        told.append(user_id)

    slow, sweeper = coordinator(server, "slow"), coordinator(server, "sweeper")
    assert await slow.acquire(1, "j1", {"chat_id": 1, "lang": "en"})  # its beat got lost
    suspects = await sweeper.sweep(tell, {})
    assert suspects
    await slow.release(1, "j1")  # ...but it was alive and finished the job
    assert await sweeper.sweep(tell, suspects) == {} and told == []

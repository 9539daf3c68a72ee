"""Unit tests of stopping background tasks whose cancellation may be lost (Python 3.11's
``wait_for`` race, see bot/services/tasks.py): shutdown must end anyway."""

from __future__ import annotations

import asyncio

import pytest
from fakeredis import FakeAsyncRedis, FakeServer

from bot.services.coordination import Coordinator
from bot.services.tasks import stop_tasks


async def _swallows_cancels(times: int, log: list[str],
                            until: asyncio.Event | None = None) -> None:
    """A loop that loses its first ``times`` cancellations, as a library can (and ends when
    ``until`` is set)."""
    lost = 0
    while until is None or not until.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if lost == times:
                log.append("stopped")
                raise
            lost += 1
            log.append("lost")


async def test_a_lost_cancel_is_repeated_until_the_task_ends():
    log: list[str] = []
    task = asyncio.create_task(_swallows_cancels(2, log))
    await asyncio.sleep(0)
    left = await stop_tasks([task], timeout=5, retry_every=0.02)
    assert left == set() and task.cancelled()
    assert log == ["lost", "lost", "stopped"]


async def test_a_task_that_never_stops_is_given_up_after_the_timeout(caplog):
    release = asyncio.Event()
    task = asyncio.create_task(_swallows_cancels(10**9, [], until=release))
    await asyncio.sleep(0)
    left = await asyncio.wait_for(stop_tasks([task], timeout=0.2, retry_every=0.02), 5)
    assert left == {task} and not task.done()
    assert "did not stop when cancelled" in caplog.text
    release.set()  # the test's own cleanup: let the loop end
    await asyncio.wait_for(task, 5)


async def test_finished_tasks_are_left_alone():
    async def ok() -> int:
        return 1

    task = asyncio.create_task(ok())
    await task
    assert await stop_tasks([task]) == set() and task.result() == 1


@pytest.mark.timeout(30)  # the defect was a hang: fail fast instead
async def test_closing_a_coordinator_ends_even_when_its_refresh_loses_the_cancel(monkeypatch):
    server = FakeServer()
    c = Coordinator(FakeAsyncRedis(server=server), lock_ttl=60, replica="a",
                    refresh_every=0.01)
    refreshing = asyncio.Event()
    original = Coordinator._refresh

    async def refresh_losing_one_cancel(self, user_id, token):
        refreshing.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass  # lost: the loop goes on unless it checks for closing itself
        await original(self, user_id, token)

    monkeypatch.setattr(Coordinator, "_refresh", refresh_losing_one_cancel)

    async def never(user_id, job_id):
        return False

    await c.start(never)
    assert await c.acquire(1, "j1")
    await asyncio.wait_for(refreshing.wait(), 5)
    await asyncio.wait_for(c.close(), 5)
    assert c._tasks == []
    assert await Coordinator(FakeAsyncRedis(server=server), lock_ttl=60).holder(1) is None

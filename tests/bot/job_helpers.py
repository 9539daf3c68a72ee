"""Helpers shared by the job-queue tests, single replica and coordinated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.services.jobs import Job


class Work:
    """A job body that waits for a release and records what happened."""

    def __init__(self):
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.positions: list[int] = []
        self.cancelled: list[str] = []

    async def run(self, job):
        self.started.set()
        await self.release.wait()

    async def on_position(self, position):
        self.positions.append(position)

    async def on_cancel(self, reason):
        self.cancelled.append(reason)

    def job(self, user_id: int) -> Job:
        return Job(user_id, self.run, self.on_position, self.on_cancel)


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it is true; ``TimeoutError`` after ``timeout`` seconds."""
    async def poll():
        while not condition():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)

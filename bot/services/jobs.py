"""The job queue: a global concurrency cap, one job per user, positions, cancellation.

It knows nothing about Telegram: a :class:`Job` carries coroutine callbacks for its work and
for telling its user about queue movement and cancellation. A fixed set of worker tasks takes
jobs in FIFO order, so the number of stylizations sent to TorchServe at once never exceeds the
cap however many users there are, and the queue position of every waiting job is exact.

With a :class:`~bot.services.coordination.Coordinator` (several replicas sharing Redis), "one
job per user" holds across replicas and a cancel reaches the replica running the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.services.tasks import stop_tasks

if TYPE_CHECKING:
    from bot.services.coordination import Coordinator

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
USER, SHUTDOWN = "user", "shutdown"  # why a job was cancelled


class QueueError(Exception):
    """Why a job could not be submitted."""


class UserBusy(QueueError):
    pass


class QueueFull(QueueError):
    pass


class ShuttingDown(QueueError):
    pass


@dataclass(eq=False)
class Job:
    """One unit of work for one user.

    ``run`` does the work (it is cancelled on /cancel); ``on_position`` is told the queue
    position (1 = next; 0 = now running); ``on_cancel`` is told why the job was cancelled
    after its work has stopped.
    """

    user_id: int
    run: Callable[[Job], Awaitable[Any]]
    on_position: Callable[[int], Awaitable[None]] | None = None
    on_cancel: Callable[[str], Awaitable[None]] | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    heavy: bool = False  # a clip: at most ``max_heavy`` of them run at once
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    state: str = QUEUED
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    cancel_reason: str | None = None
    error: BaseException | None = None
    task: asyncio.Task | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class JobQueue:
    """FIFO queue served by ``concurrency`` workers."""

    def __init__(self, concurrency: int = 2, max_queue: int = 100, metrics: Any = None,
                 coordination: Coordinator | None = None, max_heavy: int | None = None):
        self.concurrency = max(1, concurrency)
        # heavy jobs (clips) running at once; photos queued behind a waiting clip go first
        self.max_heavy = max(1, max_heavy) if max_heavy else self.concurrency
        self.max_queue = max_queue
        self.metrics = metrics
        self.coordination = coordination
        self._waiting: deque[Job] = deque()
        self._by_user: dict[int, Job] = {}
        self._wakeup = asyncio.Condition()
        self._workers: list[asyncio.Task] = []
        self._notify_tasks: set[asyncio.Task] = set()
        self._closing = False

    # --- inspection -------------------------------------------------------------------------

    def get(self, user_id: int) -> Job | None:
        return self._by_user.get(user_id)

    def position(self, job: Job) -> int:
        """1-based place among waiting jobs; 0 when running or finished."""
        try:
            return self._waiting.index(job) + 1
        except ValueError:
            return 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return sum(1 for j in self._by_user.values() if j.state == RUNNING)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if not self._workers:
            self._closing = False
            self._workers = [asyncio.create_task(self._worker(i), name=f"job-worker-{i}")
                             for i in range(self.concurrency)]

    async def start_coordination(self) -> None:
        """Listen for cancel requests from other replicas (no-op without coordination)."""
        if self.coordination is not None:
            await self.coordination.start(self._cancel_requested)

    async def submit(self, job: Job) -> int:
        """Queue ``job``; returns its position (1 = next, 0 = starts now). Raises UserBusy,
        QueueFull, ShuttingDown."""
        failure = self._refusal(job)
        if failure is not None:
            raise failure
        if self.coordination is not None:
            # the note (how to reach the user) lets another replica tell them if we die
            if not await self.coordination.acquire(job.user_id, job.id,
                                                   job.payload.get("note")):
                raise UserBusy()  # in flight on another replica
            # the checks above may have changed while we waited for Redis
            failure = self._refusal(job)
            if failure is not None:
                await self.coordination.release(job.user_id, job.id)
                raise failure
        idle = self._idle_workers()
        self._by_user[job.user_id] = job
        self._waiting.append(job)
        # a job an idle worker is about to take is not "in the queue" for its user
        position = max(0, len(self._waiting) - idle)
        if job.heavy and self._runnable() is not job and job in self._waiting:
            position = max(1, position)  # behind the running clip, idle workers or not
        job.payload["_position"] = position
        self._gauge()
        async with self._wakeup:
            self._wakeup.notify()
        return position

    def _refusal(self, job: Job) -> QueueError | None:
        """Why ``job`` cannot be queued now, or None."""
        if self._closing:
            return ShuttingDown()
        if job.user_id in self._by_user:
            return UserBusy()
        if len(self._waiting) >= self.max_queue + self._idle_workers():
            return QueueFull()
        return None

    async def cancel_anywhere(self, user_id: int) -> bool:
        """Cancel the user's job on this replica or, with coordination, on the one running it
        (which then tells the user). False when the user has no job in flight."""
        if await self.cancel(user_id) is not None:
            return True
        if self.coordination is None:
            return False
        return await self.coordination.request_cancel(user_id)

    async def _cancel_requested(self, user_id: int, job_id: str) -> bool:
        """A cancel from another replica: only for the very job it saw (not a newer one)."""
        job = self._by_user.get(user_id)
        if job is None or job.id != job_id:
            return False
        return await self.cancel(user_id) is not None

    async def cancel(self, user_id: int, reason: str = USER, wait: float = 10.0) -> Job | None:
        """Cancel the user's queued or running job; returns it, or None if there was none."""
        job = self._by_user.get(user_id)
        if job is None or job.state not in (QUEUED, RUNNING):
            return None
        job.cancel_reason = reason
        if job.state == QUEUED:
            with contextlib.suppress(ValueError):
                self._waiting.remove(job)
            await self._finish(job, CANCELLED)
            self._announce_positions()
        elif job.task is not None:
            job.task.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), wait)
        if job.on_cancel is not None:
            try:
                await job.on_cancel(reason)
            except Exception:
                log.exception("job %s: telling the user about the cancellation failed", job.id)
        return job

    async def shutdown(self, grace: float = 20.0) -> None:
        """Stop taking jobs; cancel the waiting ones, give running ones ``grace`` seconds to
        finish, then cancel them too. Every affected user is told (``on_cancel``)."""
        self._closing = True
        for job in list(self._waiting):
            await self.cancel(job.user_id, SHUTDOWN)
        running = [j for j in self._by_user.values() if j.state == RUNNING]
        if running:
            log.info("shutdown: waiting up to %.0f s for %d running job(s)", grace, len(running))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(j.done.wait() for j in running)), grace)
        for job in [j for j in self._by_user.values() if j.state == RUNNING]:
            await self.cancel(job.user_id, SHUTDOWN)
        await stop_tasks(self._workers)
        self._workers = []
        if self._notify_tasks:
            await asyncio.wait(self._notify_tasks, timeout=5)

    # --- internals --------------------------------------------------------------------------

    def _idle_workers(self) -> int:
        return max(0, self.concurrency - self.running)

    def _runnable(self) -> Job | None:
        """The first waiting job that may start: a heavy one only below ``max_heavy``."""
        heavy_running = sum(1 for j in self._by_user.values() if j.heavy and j.state == RUNNING)
        return next((j for j in self._waiting if not j.heavy or heavy_running < self.max_heavy),
                    None)

    async def _next(self) -> Job:
        async with self._wakeup:
            await self._wakeup.wait_for(lambda: self._runnable() is not None)
            job = self._runnable()
            self._waiting.remove(job)
            return job

    async def _worker(self, index: int) -> None:
        while True:
            job = await self._next()
            job.state = RUNNING
            job.started_at = time.monotonic()
            self._gauge()
            if self.metrics is not None:
                self.metrics.job_started(job.started_at - job.submitted_at)
            self._announce_positions()
            self._notify(job, 0)
            job.task = asyncio.create_task(job.run(job), name=f"job-{job.id}")
            # wait without letting a cancellation of this worker cancel the job silently
            await asyncio.wait({job.task})
            if job.task.cancelled():
                await self._finish(job, CANCELLED)
            elif job.task.exception() is not None:
                job.error = job.task.exception()
                if not isinstance(job.error, Exception):
                    raise job.error
                log.error("job %s failed: %r", job.id, job.error)
                await self._finish(job, FAILED)
            else:
                await self._finish(job, DONE)

    async def _finish(self, job: Job, state: str) -> None:
        job.state = state
        job.finished_at = time.monotonic()
        if self._by_user.get(job.user_id) is job:
            del self._by_user[job.user_id]
        self._gauge()
        if self.metrics is not None:
            self.metrics.job_finished(state, job.finished_at - job.submitted_at)
        try:
            if self.coordination is not None:
                # before ``done``: whoever waits for the job may submit the user's next one
                await self.coordination.release(job.user_id, job.id)
        finally:
            job.done.set()
            if job.heavy:  # a heavy slot is free: a waiting clip may start
                async with self._wakeup:
                    self._wakeup.notify_all()

    def _announce_positions(self) -> None:
        for index, job in enumerate(self._waiting, start=1):
            if job.payload.get("_position") != index:
                self._notify(job, index)

    def _notify(self, job: Job, position: int) -> None:
        job.payload["_position"] = position
        if job.on_position is None:
            return
        task = asyncio.create_task(job.on_position(position))
        self._notify_tasks.add(task)
        task.add_done_callback(self._notified)

    def _notified(self, task: asyncio.Task) -> None:
        self._notify_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("queue position update failed: %r", task.exception())

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue(len(self._waiting), self.running)

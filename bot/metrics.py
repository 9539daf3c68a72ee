"""Prometheus metrics of the bot, served on 127.0.0.1 by a tiny aiohttp app when
``METRICS_PORT`` is set.

A private registry (not the global default) keeps tests and several bots in one process from
colliding on metric names.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 180, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.started = Counter("bot_jobs_started", "Jobs taken from the queue",
                               registry=self.registry)
        self.finished = Counter("bot_jobs_finished", "Jobs that ended, by outcome",
                                ["outcome"], registry=self.registry)
        self.waiting = Gauge("bot_queue_waiting", "Jobs waiting for a slot",
                             registry=self.registry)
        self.running = Gauge("bot_jobs_running", "Jobs being processed",
                             registry=self.registry)
        self.wait_seconds = Histogram("bot_job_wait_seconds", "Time spent queued",
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.latency = Histogram("bot_job_latency_seconds",
                                 "From the job's submission to the result sent to the user",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.failures = Counter("bot_job_failures", "Failed jobs by reason", ["reason"],
                                registry=self.registry)
        self._runner: web.AppRunner | None = None

    # hooks called by the job queue and the job runner
    def job_started(self, waited: float) -> None:
        self.started.inc()
        self.wait_seconds.observe(waited)

    def job_finished(self, state: str, _elapsed: float) -> None:
        self.finished.labels(state).inc()

    def queue(self, waiting: int, running: int) -> None:
        self.waiting.set(waiting)
        self.running.set(running)

    def delivered(self, seconds: float) -> None:
        self.latency.observe(seconds)

    def failed(self, reason: str) -> None:
        self.failures.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, host: str, port: int) -> None:
        async def handle(_request: web.Request) -> web.Response:
            return web.Response(body=self.render(),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        log.info("metrics on http://%s:%d/metrics", host, port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

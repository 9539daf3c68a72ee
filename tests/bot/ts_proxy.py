"""An HTTP proxy in front of the real TorchServe that a test controls.

Stopping the shared, session-wide TorchServe would break every later test, so the bot talks
to this proxy instead: ``down()`` closes its port (the bot sees connection refused, exactly as
when TorchServe is stopped), ``up()`` reopens the same port, and ``hold()`` keeps stylization
requests waiting until ``release()`` (to have a job reliably "running" while others queue).
Requests and answers pass through unchanged, the bearer token included.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

FORWARDED_HEADERS = ("Authorization", "Content-Type")


class TorchServeProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.port = 0
        self.stylizations = 0  # multipart (stylize) requests forwarded
        self.held = asyncio.Event()  # set while a stylization is being held
        self._gate: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
        await self.up()
        return self.url

    async def up(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def down(self) -> None:
        """Close the port and every open connection: TorchServe is 'stopped'."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def hold(self) -> None:
        self._gate = asyncio.Event()
        self.held.clear()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    async def close(self) -> None:
        self.release()
        await self.down()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED_HEADERS}
        if request.content_type.startswith("multipart/"):
            self.stylizations += 1
            if self._gate is not None:
                self.held.set()
                await self._gate.wait()
        assert self._session is not None
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=body, headers=headers) as resp:
            payload = await resp.read()
            return web.Response(body=payload, status=resp.status,
                                headers={"Content-Type": resp.headers.get(
                                    "Content-Type", "application/octet-stream")})

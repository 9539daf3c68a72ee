"""A TCP proxy a test can take down and bring back, and a fake Redis server behind it.

There is no redis-server here; fakeredis' ``TcpFakeServer`` speaks RESP on a port but cannot
be stopped and restarted on the same port with its data. So the bot's ``REDIS_URL`` points at
this proxy instead: ``down()`` closes the listening port and every open connection (the bot
sees what it sees when Redis dies: reset connections, then connection refused), ``up()``
reopens the same port in front of the same data, as a Redis restarted from its AOF.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from fakeredis import TcpFakeServer


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, not a polite close: the process died
        self._writers.clear()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


class FakeRedisBehindProxy:
    """A fakeredis TCP server (in a thread) and a :class:`TcpProxy` in front of it."""

    def __init__(self):
        self.server = TcpFakeServer(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.proxy = TcpProxy(*self.server.server_address[:2])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.proxy.port}/0"

    async def start(self) -> None:
        self._thread.start()
        await self.proxy.up()

    async def close(self) -> None:
        await self.proxy.down()
        await asyncio.to_thread(self.server.shutdown)
        self.server.server_close()

"""The bot's HTTP transport to TorchServe: one shared :class:`aiohttp.ClientSession`, the key,
timeouts, retries, and the mapping of answers to :class:`~tsclient.errors.TorchServeError`.

Every request has a connect and a total timeout. Overload (503) and connection failures are
retried with exponential backoff because both are usually short (a worker restarting,
TorchServe coming back up). TorchServe's "Worker died." answer (the worker process crashed or
was killed while it held the request) is retried once, at once: stylizing is idempotent, and
TorchServe queues the retry until it has restarted the worker. A refused key is read again from
the key file and the request sent once more. Everything else fails at once with a
``TorchServeError`` whose ``kind`` tells the bot which message to show.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import aiohttp

from bot.services.ts_stream import NDJSON, last_line
from tsclient.errors import (
    BUSY,
    DOWN,
    TIMEOUT,
    WORKER_DIED,
    InvalidKeyError,
    TorchServeError,
    answer_error,
)
from tsclient.errors import key_rejected as _key_rejected
from tsclient.keys import InferenceKey

log = logging.getLogger("bot.services.torchserve")


class Transport:
    """POSTs to ``{base_url}/predictions/{model}[/{version}]`` with retries."""

    def __init__(self, base_url: str, model: str, version: str = "", *,
                 key: InferenceKey | None = None, timeout: float = 180.0,
                 connect_timeout: float = 5.0, retries: int = 3, retry_delay: float = 1.0,
                 max_connections: int = 16):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.version = version
        self.key = key or InferenceKey()
        self.connect_timeout = connect_timeout
        self.timeout = self.client_timeout(timeout)
        self.info_timeout = self.client_timeout(min(timeout, 30.0))
        self.retries = max(1, retries)
        self.retry_delay = retry_delay
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def client_timeout(self, total: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total, connect=self.connect_timeout,
                                     sock_connect=self.connect_timeout)

    @property
    def url(self) -> str:
        path = f"{self.base_url}/predictions/{self.model}"
        return f"{path}/{self.version}" if self.version else path

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, payload, timeout: aiohttp.ClientTimeout, what: str,
                    model: str | None = None, stream=None) -> tuple[int, str, bytes]:
        """POST with retries; ``payload()`` builds a fresh body per attempt (a sent FormData
        cannot be sent again). Returns status, content type and body of a 200 answer; with
        ``stream`` an NDJSON answer's progress lines go to it and the body is the last line."""
        await self.start()
        assert self._session is not None
        reloaded_key = False
        retried_death = False
        attempt = 0
        while True:
            attempt += 1
            body_kw = payload()
            if isinstance(body_kw, aiohttp.FormData):
                body_kw = {"data": body_kw}
            started = time.monotonic()
            try:
                url = self.url if model is None else f"{self.base_url}/predictions/{model}"
                async with self._session.post(url, headers=self.key.headers(),
                                              timeout=timeout, **body_kw) as resp:
                    status, ctype = resp.status, resp.content_type or ""
                    if stream is not None and status == 200 and ctype == NDJSON:
                        body = await last_line(resp, stream)
                    else:
                        body = await resp.read()
            except aiohttp.ConnectionTimeoutError:
                failure = TorchServeError("connect timeout", kind=DOWN, attempts=attempt)
            except (TimeoutError, aiohttp.SocketTimeoutError):
                raise TorchServeError(f"{what}: no answer within {timeout.total} s",
                                      kind=TIMEOUT, attempts=attempt) from None
            except aiohttp.ClientConnectionError as exc:
                failure = TorchServeError(f"{type(exc).__name__}", kind=DOWN, attempts=attempt)
            else:
                log.debug("torchserve %s: %s in %.2f s (attempt %d)", what, status,
                          time.monotonic() - started, attempt)
                if status == 200:
                    return status, ctype, body
                if self.key_rejected(status, body):
                    # a renewed key (or a restarted TorchServe) wrote a new key file: read it
                    # and send once more; still refused, it is an auth failure, never retried
                    if not reloaded_key and self.key.reload():
                        reloaded_key = True
                        attempt -= 1
                        continue
                    raise self._key_error(status, attempt)
                failure = self._error(status, ctype, body, attempt)
                if failure.code == WORKER_DIED and self._retry_death(retried_death, started,
                                                                     timeout, what):
                    retried_death = True
                    continue
                if failure.kind != BUSY:
                    raise failure
            if attempt >= self.retries:
                log.warning("torchserve %s failed after %d attempts: %s", what, attempt,
                            failure.kind)
                raise failure
            delay = self.retry_delay * (2 ** (attempt - 1)) * (0.75 + random.random() / 2)
            log.info("torchserve %s: %s, retrying in %.1f s", what, failure.kind, delay)
            await asyncio.sleep(delay)

    @staticmethod
    def _retry_death(retried: bool, started: float, timeout: aiohttp.ClientTimeout,
                     what: str) -> bool:
        """Whether to send a request again after its worker died: once, and only when the
        attempt failed within half the timeout. A worker killed for running past
        ``responseTimeout`` would run (and be killed) as long again, past the job's budget;
        a request that kills its worker each time (a crash on that input) is tried twice."""
        elapsed = time.monotonic() - started
        if retried or (timeout.total is not None and elapsed > timeout.total / 2):
            log.warning("torchserve %s: the worker died again (%.1f s); not retrying", what,
                        elapsed)
            return False
        log.warning("torchserve %s: the worker died after %.1f s; sending it once more", what,
                    elapsed)
        return True

    @staticmethod
    def key_rejected(status: int, body: bytes) -> bool:
        """Whether an answer refuses the key (:func:`tsclient.errors.key_rejected`)."""
        return _key_rejected(status, body)

    def _key_error(self, status: int, attempt: int) -> TorchServeError:
        """The error for a key refused even after the key file was read again."""
        log.error("TorchServe rejected the inference key (HTTP %d: wrong or expired) from %s, "
                  "also after reading it again: is TorchServe's key renewal running "
                  "(scripts/serve.sh start, or the container's docker/ts_keys.py)?", status,
                  self.key.source())
        return InvalidKeyError("the inference key was rejected (wrong or expired)",
                               status=status, attempts=attempt)

    @staticmethod
    def _error(status: int, ctype: str, body: bytes, attempt: int) -> TorchServeError:
        """Map a non-200 answer (:func:`tsclient.errors.answer_error`), and log the ones an
        operator must fix: a refused key, an unknown model."""
        error = answer_error(status, body, attempt)
        if isinstance(error, InvalidKeyError):
            log.error("TorchServe rejected the inference key (HTTP %d): set TS_INFERENCE_KEY "
                      "or TS_KEY_FILE", status)
        elif status == 404 and not error.code:
            log.error("TorchServe answered 404 without an error code (is TS_MODEL right?): %s",
                      error.message)
        return error

"""Asynchronous client of the MSG-Net TorchServe inference API.

One shared :class:`aiohttp.ClientSession` for the whole bot; every request has a connect and a
total timeout. Overload (503) and connection failures are retried with exponential backoff
because both are usually short (a worker restarting, TorchServe coming back up). TorchServe's
"Worker died." answer (the worker process crashed or was killed while it held the request) is
retried once, at once: stylizing is idempotent, and TorchServe queues the retry until it has
restarted the worker. Everything else fails at once with a :class:`TorchServeError` whose
``kind`` tells the bot which message to show. The server is the source of truth for presets
and sizes: they are fetched from it and cached for a few minutes, never read from a local copy.

A clip sent with a ``cancel_token`` that nobody waits for any more (its job cancelled, timed
out or shut down) is also stopped on the server: closing the request does not reach the
TorchServe worker, so the client sends ``cancel=<token>`` to the photo model (the clip model's
one worker is busy with the clip) in the background; a failed cancel is only logged.

A clip's streamed answer that ends without its final line (when the clip worker dies,
TorchServe 0.12 drops the connection after the 200 and the progress lines it has sent, with no
error line or 5xx) is a :data:`STREAM_CUT` error, not retried: a clip is minutes of work, and what
killed its worker (memory) may be the clip itself. The clip is cancelled on the server too, in
case only the connection was lost and the worker is still at it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

# kinds of failure the bot distinguishes (each maps to one user message)
CLIENT = "client"    # the server refused the input: ``code`` says why (corrupt_image, ...)
BUSY = "busy"        # 503 after all retries
DOWN = "down"        # cannot connect / connection lost, after all retries
TIMEOUT = "timeout"  # no answer within the timeout
SERVER = "server"    # 5xx, unexpected answers, wrong model name, rejected key

# ``code`` of a SERVER error: TorchServe answered "Worker died." (500, or 507 when the worker
# exited with status 137, as a SIGKILL or the OOM killer leaves it) for a request its worker
# held when it died
WORKER_DIED = "worker_died"
# ``code`` of a SERVER error: a clip's NDJSON answer ended without its final line (the clip
# worker died, or the connection was lost, while it streamed)
STREAM_CUT = "stream_cut"
# ``code`` of a SERVER error: TorchServe refused the inference key, after the key file was
# read again (TorchServe 0.12 answers a wrong or expired key with HTTP 400
# ``InvalidKeyException``, not 401; keys expire after ``token_expiration_min``)
INVALID_KEY = "invalid_key"


NDJSON = "application/x-ndjson"  # the clip model's streamed answer (progress, then the clip)


async def _last_line(resp: aiohttp.ClientResponse, on_progress) -> bytes:
    """Read an NDJSON answer: every ``{"done", "total"}`` line to ``on_progress``, and the
    last line (the clip, several MB of base64: split by hand, not by readline's 64 kB cap).
    An answer that stops before a final line (a JSON object with ``status``) is a
    :data:`STREAM_CUT` error: the chunked body cut off, or ended after progress lines only."""
    buffer, last = b"", b""
    progress, frames = 0, ""
    while True:
        try:
            chunk = await resp.content.readany()
        except TimeoutError:  # aiohttp's socket timeouts too: the caller's TIMEOUT
            raise
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise _stream_cut(progress, frames,
                              f"the answer broke off ({type(exc).__name__})") from None
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                item = None
            if isinstance(item, dict) and "done" in item and "body" not in item:
                progress += 1
                frames = f"{item['done']} of {item.get('total') or '?'} frames"
                await on_progress(int(item["done"]), int(item.get("total") or 0))
            else:
                last = line
    last = last or buffer
    try:
        final = json.loads(last)
    except ValueError:
        final = None
    if not isinstance(final, dict) or "status" not in final:
        raise _stream_cut(progress, frames, "the answer ended without its final line")
    return last


def _stream_cut(progress: int, frames: str, how: str) -> TorchServeError:
    detail = f" ({frames})" if frames else ""
    return TorchServeError(SERVER, f"clip stream cut after {progress} progress lines{detail}: "
                           f"{how}", code=STREAM_CUT)


class TorchServeError(Exception):
    """A failed TorchServe call; ``kind`` is one of the constants above."""

    def __init__(self, kind: str, message: str, *, code: str = "", status: int | None = None,
                 attempts: int = 1, field: str = ""):
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.status = status
        self.message = message
        self.attempts = attempts
        self.field = field  # the request field the handler blames (content, style_2 ...)

    def __repr__(self) -> str:
        return (f"TorchServeError(kind={self.kind!r}, code={self.code!r}, status={self.status}, "
                f"field={self.field!r}, attempts={self.attempts}, message={self.message!r})")


@dataclass(frozen=True)
class Preset:
    name: str
    preview: bool = False


@dataclass(frozen=True)
class ServerInfo:
    """What the server offers: presets and output sizes (from ``{"action": "presets"}``)."""

    presets: tuple[Preset, ...]
    default_size: int = 512
    max_size: int = 2048
    sizes: tuple[int, ...] = (512,)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def preset(self, name: str) -> Preset | None:
        return next((p for p in self.presets if p.name == name), None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerInfo:
        presets = []
        for item in data.get("presets") or []:
            if isinstance(item, str):
                presets.append(Preset(item))
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                presets.append(Preset(item["name"], bool(item.get("preview"))))
        default_size = int(data.get("default_size") or 512)
        max_size = int(data.get("max_size") or max(default_size, 512))
        sizes = sorted({int(s) for s in data.get("sizes") or [] if 0 < int(s) <= max_size})
        if not sizes:
            sizes = [default_size]
        known = {"presets", "default_size", "max_size", "sizes"}
        return cls(tuple(presets), default_size, max_size, tuple(sizes),
                   {k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class StyledImage:
    data: bytes
    content_type: str

    @property
    def extension(self) -> str:
        return "png" if self.content_type == "image/png" else "jpg"


@dataclass(frozen=True)
class StyledClip:
    """A stylized clip: ``image/gif`` or ``video/mp4``, and the server's description
    (``frames=N;fps=F;seconds=S;size=WxH;audio=...``)."""

    data: bytes
    content_type: str
    about: str = ""

    @property
    def extension(self) -> str:
        return "gif" if self.content_type == "image/gif" else "mp4"

    def field(self, name: str) -> str:
        """One ``name=value`` of :attr:`about` ("" when absent)."""
        for part in self.about.split(";"):
            key, _, value = part.partition("=")
            if key == name:
                return value
        return ""


class InferenceKey:
    """The ``Authorization: Bearer`` key: a fixed value, or TorchServe's key_file.json.

    TorchServe 0.12 writes ``{"management": {"key": ...}, "inference": {"key": ...},
    "API": {"key": ...}}`` on every start and whenever a key is renewed (keys expire), so the
    file is re-read when it changes and after an answer that refuses the key.
    """

    def __init__(self, value: str = "", key_file: str = ""):
        self._value = value
        self._file = Path(key_file) if key_file else None
        self._mtime: float | None = None
        self._file_value = ""

    def _read_file(self) -> str:
        assert self._file is not None
        try:
            stat = self._file.stat()
            if self._mtime == stat.st_mtime and self._file_value:
                return self._file_value
            data = json.loads(self._file.read_text(encoding="utf-8"))
            self._file_value = str(data["inference"]["key"])
            self._mtime = stat.st_mtime
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("cannot read the inference key from TS_KEY_FILE=%s: %s", self._file,
                      type(exc).__name__)
            self._file_value = ""
        return self._file_value

    def current(self) -> str:
        if self._value:
            return self._value
        if self._file is not None:
            return self._read_file()
        return ""

    def reload(self) -> bool:
        """Re-read the key file; True when that gave a different key worth retrying with."""
        if self._value or self._file is None:
            return False
        old = self._file_value
        self._mtime = None
        return bool(self._read_file()) and self._file_value != old

    def headers(self) -> dict[str, str]:
        key = self.current()
        return {"Authorization": f"Bearer {key}"} if key else {}


class TorchServeClient:
    """Stylization, presets and previews over TorchServe's REST inference API."""

    def __init__(self, base_url: str, model: str, version: str = "", *,
                 key: InferenceKey | None = None, timeout: float = 180.0,
                 clip_model: str = "", clip_timeout: float = 1860.0,
                 connect_timeout: float = 5.0, retries: int = 3, retry_delay: float = 1.0,
                 info_ttl: float = 300.0, max_connections: int = 16):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.version = version
        self.key = key or InferenceKey()
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout,
                                             sock_connect=connect_timeout)
        self.info_timeout = aiohttp.ClientTimeout(total=min(timeout, 30.0),
                                                  connect=connect_timeout,
                                                  sock_connect=connect_timeout)
        self.clip_model = clip_model or model
        self.clip_timeout = aiohttp.ClientTimeout(total=clip_timeout, connect=connect_timeout,
                                                  sock_connect=connect_timeout)
        self.retries = max(1, retries)
        self.retry_delay = retry_delay
        self.info_ttl = info_ttl
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._info: ServerInfo | None = None
        self._info_at = 0.0
        self._info_lock = asyncio.Lock()
        self._previews: OrderedDict[str, bytes] = OrderedDict()
        self._cancels: set[asyncio.Task] = set()  # cancels of abandoned clips, in flight

    @property
    def url(self) -> str:
        path = f"{self.base_url}/predictions/{self.model}"
        return f"{path}/{self.version}" if self.version else path

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector)

    async def close(self, cancel_wait: float = 5.0) -> None:
        """Close the session, once the cancels of abandoned clips have gone (at most
        ``cancel_wait`` seconds)."""
        if self._cancels:
            await asyncio.wait(set(self._cancels), timeout=cancel_wait)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- public API -------------------------------------------------------------------------

    async def stylize(self, content: bytes, *, style: bytes | None = None,
                      style_id: str | None = None, size: int | None = None,
                      style_size: int | None = None, fmt: str = "jpeg",
                      options: dict[str, str] | None = None) -> StyledImage:
        """Stylize ``content`` with a style image, a preset (or a ``NAME:W,...`` mix), or both
        mixed; ``options`` are further REST fields (strength, keep_colors, brush, action)."""
        sheet = (options or {}).get("action") == "sheet"
        if style is None and style_id is None and not sheet:
            raise ValueError("give a style, a style_id or both")

        fields = {**(options or {}), "format": fmt}
        if size:
            fields["size"] = str(size)
        if style_size:
            fields["style_size"] = str(style_size)

        def form() -> aiohttp.FormData:
            return _style_form(content, style, style_id, fields)

        status, ctype, body = await self._post(form, self.timeout, "stylize")
        if not ctype.startswith("image/"):
            raise TorchServeError(SERVER, f"expected an image, got {ctype or 'no type'}",
                                  status=status)
        return StyledImage(body, ctype)

    async def stylize_clip(self, content: bytes, *, style: bytes | None = None,
                           style_id: str | None = None, options: dict[str, str] | None = None,
                           on_progress=None, cancel_token: str | None = None) -> StyledClip:
        """Stylize a GIF or video on the clip model. The server streams ``{"done", "total"}``
        lines (``on_progress(done, total)`` is awaited for each), then one line with the clip
        (base64) or its error; an error found before any frame is a plain 4xx answer.

        With ``cancel_token`` (16-64 of ``A-Za-z0-9_-``) a call that is cancelled or times out
        also asks the server to stop the clip (:meth:`cancel_clip`, in the background)."""
        fields = {**(options or {}), "progress": "true"}
        if cancel_token:
            fields["cancel_token"] = cancel_token

        def form() -> aiohttp.FormData:
            return _style_form(content, style, style_id, fields)

        try:
            status, ctype, lines = await self._post(form, self.clip_timeout, "clip",
                                                    model=self.clip_model, stream=on_progress)
        except asyncio.CancelledError:
            if cancel_token:
                self._cancel_later(cancel_token)
            raise
        except TorchServeError as exc:
            if exc.code == STREAM_CUT:
                log.warning("torchserve clip: %s", exc.message)
            # the server may still be at it (a cut stream: only the connection may be gone)
            if cancel_token and (exc.kind == TIMEOUT or exc.code == STREAM_CUT):
                self._cancel_later(cancel_token)
            raise
        if ctype in ("image/gif", "video/mp4"):  # a server that did not stream
            return StyledClip(lines, ctype)
        if ctype.startswith("image/"):  # a still GIF: the server answered with a photo
            return StyledClip(lines, ctype)
        try:
            final = json.loads(lines)
        except ValueError:
            raise TorchServeError(SERVER, "bad clip answer") from None
        if final.get("status") != 200:
            raise self._error(int(final.get("status") or 500), "application/json", lines, 1)
        try:
            body = base64.b64decode(final["body"])
        except (KeyError, ValueError, TypeError):
            raise TorchServeError(SERVER, "bad clip answer: no body") from None
        return StyledClip(body, str(final.get("content_type") or ""), str(final.get("clip", "")))

    async def cancel_clip(self, token: str) -> bool:
        """Ask the server to stop the clip sent with ``cancel_token=token``: ``cancel=<token>``
        to the photo model, whose worker records it where the clip worker looks before each
        chunk of frames. False (logged, never raised) when that fails."""
        try:
            _, _, body = await self._post(lambda: {"json": {"cancel": token}},
                                          self.info_timeout, "cancel")
        except TorchServeError as exc:
            log.warning("clip cancel not delivered to TorchServe (%s, HTTP %s, %s): the server "
                        "may finish the clip", exc.kind, exc.status, exc.code or "no code")
            return False
        except (aiohttp.ClientError, RuntimeError) as exc:  # e.g. the session closed meanwhile
            log.warning("clip cancel not delivered to TorchServe: %s", type(exc).__name__)
            return False
        log.debug("clip cancel %s delivered: %s", token, body[:100])
        return True

    def _cancel_later(self, token: str) -> None:
        """:meth:`cancel_clip` in a task of its own: the caller is being cancelled."""
        task = asyncio.get_running_loop().create_task(self.cancel_clip(token),
                                                      name="torchserve-clip-cancel")
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def server_info(self, *, refresh: bool = False) -> ServerInfo:
        """Presets and sizes, cached for ``info_ttl`` seconds (a stale copy if the server is
        down and one was fetched before)."""
        async with self._info_lock:
            fresh = time.monotonic() - self._info_at < self.info_ttl
            if self._info is not None and fresh and not refresh:
                return self._info
            try:
                status, ctype, body = await self._post(
                    lambda: {"json": {"action": "presets"}}, self.info_timeout, "presets")
                info = ServerInfo.from_json(json.loads(body))
            except TorchServeError:
                if self._info is not None and not refresh:
                    log.warning("using a stale preset list: TorchServe did not answer")
                    return self._info
                raise
            except (ValueError, TypeError) as exc:
                raise TorchServeError(SERVER, f"bad presets answer: {exc}") from None
            if self._info is None or self._info.presets != info.presets:
                self._previews.clear()
            self._info, self._info_at = info, time.monotonic()
            return info

    async def preview(self, name: str) -> bytes:
        """A preset's preview image (JPEG), cached in memory."""
        if name in self._previews:
            self._previews.move_to_end(name)
            return self._previews[name]
        _, ctype, body = await self._post(
            lambda: {"json": {"action": "preview", "style_id": name}}, self.info_timeout,
            "preview")
        if not ctype.startswith("image/"):
            raise TorchServeError(SERVER, f"expected a preview image, got {ctype}")
        self._previews[name] = body
        while len(self._previews) > 128:
            self._previews.popitem(last=False)
        return body

    # --- transport --------------------------------------------------------------------------

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
                        body = await _last_line(resp, stream)
                    else:
                        body = await resp.read()
            except aiohttp.ConnectionTimeoutError:
                failure = TorchServeError(DOWN, "connect timeout", attempts=attempt)
            except (TimeoutError, aiohttp.SocketTimeoutError):
                raise TorchServeError(TIMEOUT, f"{what}: no answer within {timeout.total} s",
                                      attempts=attempt) from None
            except aiohttp.ClientConnectionError as exc:
                failure = TorchServeError(DOWN, f"{type(exc).__name__}", attempts=attempt)
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
        """Whether an answer refuses the key: TorchServe 0.12's 400 ``InvalidKeyException``
        (a wrong or expired key), or a 401/403 from a proxy in front of it."""
        if status in (401, 403):
            return True
        if status != 400:
            return False
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return False
        return isinstance(data, dict) and data.get("type") == "InvalidKeyException"

    def _key_error(self, status: int, attempt: int) -> TorchServeError:
        """The error for a key refused even after the key file was read again."""
        where = (f"TS_KEY_FILE={self.key._file}" if self.key._file is not None
                 else "TS_INFERENCE_KEY")
        log.error("TorchServe rejected the inference key (HTTP %d: wrong or expired) from %s, "
                  "also after reading it again: is TorchServe's key renewal running "
                  "(scripts/serve.sh start, or the container's docker/ts_keys.py)?", status,
                  where)
        return TorchServeError(SERVER, "the inference key was rejected (wrong or expired)",
                               code=INVALID_KEY, status=status, attempts=attempt)

    @staticmethod
    def _error(status: int, ctype: str, body: bytes, attempt: int) -> TorchServeError:
        """Map a non-200 answer: the handler's ``{"code": str, "message", "field"}`` first,
        then TorchServe's own errors (``{"code": int, "type", "message"}``) by status."""
        code, message, field = "", "", ""
        try:
            data = json.loads(body) if body else {}
            if isinstance(data, dict):
                if isinstance(data.get("code"), str):
                    code = data["code"]
                if isinstance(data.get("field"), str):
                    field = data["field"]
                message = str(data.get("message") or data.get("type") or "")
        except ValueError:
            message = body[:200].decode("utf-8", "replace")
        if status in (500, 507) and message == "Worker died." and not code:
            return TorchServeError(SERVER, "the TorchServe worker died during the request",
                                   code=WORKER_DIED, status=status, attempts=attempt)
        if status == 503:
            return TorchServeError(BUSY, message or "overloaded", code=code, status=status,
                                   attempts=attempt)
        if status == 413:
            return TorchServeError(CLIENT, message or "request too large",
                                   code=code or "too_large", status=status, attempts=attempt,
                                   field=field)
        if status == 408 or status == 504:
            return TorchServeError(TIMEOUT, message or "timed out", status=status,
                                   attempts=attempt)
        if TorchServeClient.key_rejected(status, body):
            log.error("TorchServe rejected the inference key (HTTP %d): set TS_INFERENCE_KEY "
                      "or TS_KEY_FILE", status)
            return TorchServeError(SERVER, "the inference key was rejected (wrong or expired)",
                                   code=INVALID_KEY, status=status, attempts=attempt)
        if 400 <= status < 500 and code:
            return TorchServeError(CLIENT, message, code=code, status=status, attempts=attempt,
                                   field=field)
        if status == 404:
            log.error("TorchServe answered 404 without an error code (is TS_MODEL right?): %s",
                      message)
        return TorchServeError(SERVER, message or f"HTTP {status}", code=code, status=status,
                               attempts=attempt)


def _style_form(content: bytes, style: bytes | None, style_id: str | None,
                fields: dict[str, str]) -> aiohttp.FormData:
    """A stylize request's multipart form (built afresh for every attempt: a FormData is
    consumed by sending it)."""
    data = aiohttp.FormData()
    data.add_field("content", content, filename="content",
                   content_type="application/octet-stream")
    if style is not None:
        data.add_field("style", style, filename="style", content_type="application/octet-stream")
    if style_id is not None:
        data.add_field("style_id", str(style_id))
    for key, value in fields.items():
        data.add_field(key, value)
    return data

"""A fake Telegram Bot API server (aiohttp) for running the real, unmodified bot in tests.

It implements the methods the bot uses with Telegram's semantics where they matter:
``getUpdates`` long-polls (waits up to ``timeout`` for an update, confirms by ``offset``, and a
newer request terminates an older one with 409 as Telegram does), uploads are multipart and
their bytes are kept, files have ids and are downloaded from ``/file/bot<token>/<path>``,
``getFile`` refuses files over 20 MB, uploads over Telegram's limits (10 MB for a photo,
50 MB otherwise) are refused, ``flood`` answers a method's next calls with 429 and a
``retry_after`` as Telegram's flood control does, edits of unknown messages or with
unchanged content fail like Telegram's, and a webhook (``setWebhook``) receives updates by
POST with the secret token header.

Tests drive it through :class:`FakeUser`: send text, commands, photos, documents and albums,
press inline buttons, and await the bot's messages and edits (no sleeps: every wait is an
event with a timeout).

    tg = FakeTelegram()
    await tg.start()                  # tg.api_url -> TELEGRAM_API_URL for the bot
    alice = tg.user(1001, "Alice", "en")
    await alice.send_photo(jpeg_bytes)
    gallery = await alice.expect(lambda m: m.photo is not None)   # shown after the photo
    await alice.press(gallery, "Use")
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024  # sendPhoto
UPLOAD_LIMIT = 50 * 1024 * 1024  # any other multipart upload
JSON_FIELDS = {"reply_markup", "media", "allowed_updates", "commands", "scope", "entities",
               "caption_entities", "link_preview_options", "reply_parameters"}
INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time",
              "max_connections", "user_id"}
SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendAnimation",
                "sendVideo", "sendVideoNote"}
CLIP_KINDS = ("animation", "video", "video_note")  # message fields holding a clip
EDIT_METHODS = {"editMessageText", "editMessageCaption", "editMessageReplyMarkup",
                "editMessageMedia"}


class ApiError(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


def image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


@dataclass
class StoredFile:
    file_id: str
    unique_id: str
    data: bytes
    path: str
    size: int  # declared size (may exceed len(data) to simulate huge files)


@dataclass
class Event:
    """One call the bot made: its method, chat, parameters, result and uploaded files."""

    method: str
    chat_id: int | None
    params: dict[str, Any]
    result: Any
    files: dict[str, bytes]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Sent:
    """A message the bot sent (or its newest state after edits), with test helpers."""

    tg: FakeTelegram
    chat_id: int
    message_id: int
    method: str
    event: Event

    @property
    def message(self) -> dict[str, Any]:
        return self.tg.messages.get((self.chat_id, self.message_id), {})

    @property
    def deleted(self) -> bool:
        return (self.chat_id, self.message_id) not in self.tg.messages

    @property
    def text(self) -> str:
        msg = self.message or self._original
        return msg.get("text") or msg.get("caption") or ""

    @property
    def _original(self) -> dict[str, Any]:
        result = self.event.result
        if isinstance(result, list):
            return next((m for m in result if m["message_id"] == self.message_id), {})
        return result if isinstance(result, dict) else {}

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data) of every inline button, row by row."""
        markup = (self.message or self._original).get("reply_markup") or {}
        return [(b.get("text", ""), b.get("callback_data", ""))
                for row in markup.get("inline_keyboard", []) for b in row]

    @property
    def reply_keyboard(self) -> list[str]:
        markup = (self.message or self._original).get("_keyboard") or {}
        return [b if isinstance(b, str) else b.get("text", "")
                for row in markup.get("keyboard", []) for b in row]

    @property
    def photo(self) -> bytes | None:
        msg = self.message or self._original
        if not msg.get("photo"):
            return None
        return self.tg.files[msg["photo"][-1]["file_id"]].data

    @property
    def document(self) -> bytes | None:
        msg = self.message or self._original
        if not msg.get("document"):
            return None
        return self.tg.files[msg["document"]["file_id"]].data

    @property
    def file_name(self) -> str | None:
        msg = self.message or self._original
        return (msg.get("document") or {}).get("file_name")

    @property
    def clip(self) -> tuple[str, bytes] | None:
        """(kind, bytes) of a sent animation, video or video note."""
        msg = self.message or self._original
        kind = next((k for k in CLIP_KINDS if msg.get(k)), None)
        return (kind, self.tg.files[msg[kind]["file_id"]].data) if kind else None

    def __repr__(self) -> str:
        kind = "photo" if self.photo else "document" if self.document else "text"
        return f"Sent({self.method}, chat={self.chat_id}, id={self.message_id}, {kind}, " \
               f"{self.text[:60]!r}, buttons={[b[0] for b in self.buttons]})"


class FakeTelegram:
    def __init__(self, token: str = "123456789:TEST-token-for-the-fake-api",
                 username: str = "styling_test_bot"):
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.bot_user = {"id": self.bot_id, "is_bot": True, "first_name": "Styling Bot",
                         "username": username, "can_join_groups": False,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.updates: list[dict[str, Any]] = []
        self.confirmed_offset = 0
        self.events: list[Event] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.files: dict[str, StoredFile] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        # language code ("" for the default) -> the bot's description / short description
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.webhook: dict[str, Any] = {}
        self.unknown_methods: list[str] = []
        self.delays: dict[str, float] = {}  # method -> seconds before it answers (slow API)
        # method -> retry_after of each of its next calls: answered 429 (flood control)
        self.flood: dict[str, list[int]] = {}
        self.requests = 0
        self._ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count] = {}
        self._update_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._poll_generation = 0
        self._runner: web.AppRunner | None = None
        self._webhook_session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self.api_url = ""

    # --- server lifecycle ---------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api_url = f"http://{host}:{port}"
        return self.api_url

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._webhook_session is not None:
            await self._webhook_session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- user side ----------------------------------------------------------------------------

    def user(self, user_id: int, first_name: str = "Test", language_code: str | None = "en",
             ) -> FakeUser:
        return FakeUser(self, user_id, first_name, language_code)

    def register_file(self, data: bytes, declared_size: int | None = None,
                      suffix: str = "bin") -> StoredFile:
        n = next(self._ids)
        stored = StoredFile(file_id=f"FILE{n}-{secrets.token_hex(6)}",
                            unique_id=f"U{n}{secrets.token_hex(3)}", data=data,
                            path=f"files/file_{n}.{suffix}",
                            size=declared_size if declared_size is not None else len(data))
        self.files[stored.file_id] = stored
        return stored

    def next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    async def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        if self.webhook.get("url"):
            self._spawn(self._deliver_webhook(update))
        else:
            async with self._changed:
                self.updates.append(update)
                self._changed.notify_all()
        return update

    async def _deliver_webhook(self, update: dict[str, Any]) -> None:
        if self._webhook_session is None:
            self._webhook_session = aiohttp.ClientSession()
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with self._webhook_session.post(self.webhook["url"], json=update,
                                              headers=headers) as resp:
            self.webhook.setdefault("deliveries", []).append(resp.status)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- waiting for the bot ------------------------------------------------------------------

    async def wait_event(self, predicate: Callable[[Event], bool], timeout: float = 10.0,
                         start: int = 0) -> tuple[int, Event]:
        """The first event from index ``start`` on that matches; waits for new ones."""
        async def scan() -> tuple[int, Event]:
            async with self._changed:
                index = start
                while True:
                    for i in range(index, len(self.events)):
                        if predicate(self.events[i]):
                            return i, self.events[i]
                    index = len(self.events)
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            recent = "\n  ".join(f"{e.method} chat={e.chat_id} {_brief(e.params)}"
                                 for e in self.events[-15:])
            raise AssertionError(f"no matching bot call within {timeout} s; last calls:\n  "
                                 f"{recent}") from None

    async def polling_started(self, timeout: float = 30.0) -> None:
        await self.wait_event(lambda e: e.method == "getUpdates", timeout)

    def calls(self, method: str, chat_id: int | None = None) -> list[Event]:
        return [e for e in self.events
                if e.method == method and (chat_id is None or e.chat_id == chat_id)]

    # --- HTTP handlers ------------------------------------------------------------------------

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        path = request.match_info["path"]
        stored = next((f for f in self.files.values() if f.path == path), None)
        if stored is None:
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found"}, status=404)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _handle_method(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            self.unknown_methods.append(method)
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found"}, status=404)
        params, files = await self._params(request)
        if self.delays.get(method):
            await asyncio.sleep(self.delays[method])
        if self.flood.get(method):
            retry_after = self.flood[method].pop(0)
            description = f"Too Many Requests: retry after {retry_after}"
            await self._record(method, params, {"error": description, "retry_after": retry_after},
                               files)
            return web.json_response({"ok": False, "error_code": 429,
                                      "description": description,
                                      "parameters": {"retry_after": retry_after}}, status=429)
        try:
            result = await handler(params, files)
        except ApiError as exc:
            await self._record(method, params, {"error": exc.description}, files)
            return web.json_response({"ok": False, "error_code": exc.code,
                                      "description": exc.description}, status=exc.code)
        if method != "getUpdates":  # recorded when the poll starts (see _m_getupdates)
            await self._record(method, params, result, files)
        return web.json_response({"ok": True, "result": public(result)})

    async def _record(self, method: str, params: dict, result: Any,
                      files: dict[str, bytes]) -> None:
        chat_id = params.get("chat_id")
        if chat_id is None and method == "answerCallbackQuery":
            chat_id = self.callback_answers.get(params.get("callback_query_id"), {}).get("chat")
        async with self._changed:
            self.events.append(Event(method, chat_id, params, result, files))
            self._changed.notify_all()

    @staticmethod
    async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.method == "POST" and request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    params.setdefault("__filenames__", {})[key] = value.filename
                else:
                    params[key] = value
        for key in list(params):
            if key in JSON_FIELDS and isinstance(params[key], str):
                params[key] = json.loads(params[key])
            elif key in INT_FIELDS and isinstance(params[key], str):
                params[key] = int(params[key])
        return params, files

    # --- helpers for methods ------------------------------------------------------------------

    def _chat(self, chat_id: int) -> dict[str, Any]:
        return {"id": chat_id, "type": "private" if chat_id > 0 else "group",
                "first_name": "User"}

    def _new_bot_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        message = {"message_id": self.next_message_id(chat_id), "date": int(time.time()),
                   "chat": self._chat(chat_id), "from": self.bot_user, **content}
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _input_file(self, value: Any, files: dict[str, bytes], name: str) -> bytes | StoredFile:
        """An InputFile: an uploaded part (by field name or attach://), or a file_id."""
        if name in files:
            return files[name]
        if isinstance(value, str) and value.startswith("attach://"):
            part = value.removeprefix("attach://")
            if part not in files:
                raise ApiError(400, f"Bad Request: file attach://{part} not found")
            return files[part]
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _photo_sizes(self, source: bytes | StoredFile) -> list[dict[str, Any]]:
        data = source.data if isinstance(source, StoredFile) else source
        dims = image_size(data)
        if dims is None:
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        stored = source if isinstance(source, StoredFile) else self.register_file(data,
                                                                                  suffix="jpg")
        return [{"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                 "width": dims[0], "height": dims[1], "file_size": stored.size}]

    def _document(self, source: bytes | StoredFile, file_name: str | None) -> dict[str, Any]:
        stored = source if isinstance(source, StoredFile) else self.register_file(source)
        return {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                "file_name": file_name or "document", "mime_type": "application/octet-stream",
                "file_size": stored.size}

    def _markup(self, params: dict[str, Any]) -> dict[str, Any]:
        markup = params.get("reply_markup")
        return {"reply_markup": markup} if markup and "inline_keyboard" in markup else {}

    def _stored(self, params: dict[str, Any], what: str = "edit") -> dict[str, Any]:
        key = (params.get("chat_id"), params.get("message_id"))
        if key not in self.messages:
            raise ApiError(400, f"Bad Request: message to {what} not found")
        return self.messages[key]

    # --- Bot API methods ----------------------------------------------------------------------

    async def _m_getme(self, params, files):
        return self.bot_user

    async def _m_getupdates(self, params, files):
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = min(int(params.get("limit") or 100), 100)
        timeout = float(params.get("timeout") or 0)
        await self._record("getUpdates", params, None, {})
        self._poll_generation += 1
        generation = self._poll_generation
        async with self._changed:
            if offset:
                self.confirmed_offset = max(self.confirmed_offset, offset)
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            self._changed.notify_all()  # wakes an older poll so it can see it was superseded
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                        "make sure that only one bot instance is running")
                pending = [u for u in self.updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if pending or left <= 0:
                    return pending[:limit]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    async def _m_deletewebhook(self, params, files):
        self.webhook = {}
        if str(params.get("drop_pending_updates")).lower() == "true":
            self.updates.clear()
        return True

    async def _m_setwebhook(self, params, files):
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token"),
                        "allowed_updates": params.get("allowed_updates")}
        return True

    async def _m_getwebhookinfo(self, params, files):
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}

    async def _m_setmycommands(self, params, files):
        self.commands[params.get("language_code") or ""] = params["commands"]
        return True

    @staticmethod
    def _set_per_language(store: dict, params, field: str, limit: int) -> bool:
        """Keep ``params[field]`` per language, refused over Telegram's length ``limit``."""
        text = params.get(field) or ""
        if len(text) > limit:
            raise ApiError(400, f"Bad Request: {field.replace('_', ' ')} is too long")
        store[params.get("language_code") or ""] = text
        return True

    async def _m_setmydescription(self, params, files):
        return self._set_per_language(self.descriptions, params, "description", 512)

    async def _m_setmyshortdescription(self, params, files):
        return self._set_per_language(self.short_descriptions, params, "short_description", 120)

    async def _m_getmydescription(self, params, files):
        return {"description": self.descriptions.get(params.get("language_code") or "", "")}

    async def _m_getmyshortdescription(self, params, files):
        return {"short_description": self.short_descriptions.get(
            params.get("language_code") or "", "")}

    async def _m_getmycommands(self, params, files):
        return self.commands.get(params.get("language_code") or "", [])

    async def _m_deletemycommands(self, params, files):
        self.commands.pop(params.get("language_code") or "", None)
        return True

    async def _m_close(self, params, files):
        return True

    async def _m_logout(self, params, files):
        return True

    async def _m_sendmessage(self, params, files):
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._new_bot_message(params["chat_id"], text=text,
                                     **_any_markup(params))

    async def _m_sendphoto(self, params, files):
        source = self._input_file(params.get("photo"), files, "photo")
        if isinstance(source, bytes) and len(source) > PHOTO_UPLOAD_LIMIT:
            raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
        content: dict[str, Any] = {"photo": self._photo_sizes(source)}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._new_bot_message(params["chat_id"], **content, **_any_markup(params))

    async def _m_senddocument(self, params, files):
        source = self._input_file(params.get("document"), files, "document")
        if isinstance(source, bytes) and len(source) > UPLOAD_LIMIT:
            raise ApiError(413, "Request Entity Too Large")
        value = params.get("document")
        part = value.removeprefix("attach://") if isinstance(value, str) else "document"
        name = params.get("__filenames__", {}).get(part)
        content: dict[str, Any] = {"document": self._document(source, name)}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._new_bot_message(params["chat_id"], **content, **_any_markup(params))

    async def _send_clip(self, params, files, kind: str):
        source = self._input_file(params.get(kind), files, kind)
        if isinstance(source, bytes) and len(source) > UPLOAD_LIMIT:
            raise ApiError(413, "Request Entity Too Large")
        stored = source if isinstance(source, StoredFile) else self.register_file(source)
        media: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                                 "file_size": stored.size,
                                 "duration": int(params.get("duration") or 0)}
        if kind == "video_note":
            media["length"] = int(params.get("length") or 0)
        else:
            media.update(width=int(params.get("width") or 0),
                         height=int(params.get("height") or 0))
        content: dict[str, Any] = {kind: media}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._new_bot_message(params["chat_id"], **content, **_any_markup(params))

    async def _m_sendanimation(self, params, files):
        return await self._send_clip(params, files, "animation")

    async def _m_sendvideo(self, params, files):
        return await self._send_clip(params, files, "video")

    async def _m_sendvideonote(self, params, files):
        return await self._send_clip(params, files, "video_note")

    async def _m_sendmediagroup(self, params, files):
        media = params.get("media") or []
        if not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the album")
        group_id = secrets.token_hex(8)
        sent = []
        for item in media:
            source = self._input_file(item.get("media"), files, "")
            if item.get("type") == "photo":
                content: dict[str, Any] = {"photo": self._photo_sizes(source)}
            else:
                content = {"document": self._document(source, None)}
            if item.get("caption"):
                content["caption"] = item["caption"]
            sent.append(self._new_bot_message(params["chat_id"], media_group_id=group_id,
                                              **content))
        return sent

    async def _m_sendchataction(self, params, files):
        return True

    async def _m_answercallbackquery(self, params, files):
        query = self.callback_answers.get(params["callback_query_id"])
        if query is None:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired "
                                "or query ID is invalid")
        if query.get("answered"):
            raise ApiError(400, "Bad Request: query is already answered")
        query.update(answered=True, text=params.get("text"),
                     show_alert=params.get("show_alert"))
        return True

    async def _m_editmessagetext(self, params, files):
        message = self._stored(params)
        text = params.get("text") or ""
        new_markup = _inline(params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        if text == message["text"] and new_markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        message["text"] = text
        _set_markup(message, new_markup)
        return message

    async def _m_editmessagecaption(self, params, files):
        message = self._stored(params)
        message["caption"] = params.get("caption") or ""
        _set_markup(message, _inline(params))
        return message

    async def _m_editmessagereplymarkup(self, params, files):
        message = self._stored(params)
        new_markup = _inline(params)
        if new_markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        _set_markup(message, new_markup)
        return message

    async def _m_editmessagemedia(self, params, files):
        message = self._stored(params)
        media = params.get("media") or {}
        source = self._input_file(media.get("media"), files, "")
        if media.get("type") == "photo":
            message.pop("document", None)
            message["photo"] = self._photo_sizes(source)
        else:
            message.pop("photo", None)
            message["document"] = self._document(source, None)
        message.pop("caption", None)
        if media.get("caption"):
            message["caption"] = media["caption"]
        _set_markup(message, _inline(params))
        return message

    async def _m_deletemessage(self, params, files):
        self._stored(params, "delete")
        del self.messages[(params["chat_id"], params["message_id"])]
        return True

    async def _m_getfile(self, params, files):
        stored = self.files.get(params.get("file_id", ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.size > TELEGRAM_DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                "file_size": stored.size, "file_path": stored.path}


def _inline(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    return markup if markup and markup.get("inline_keyboard") else None


def _any_markup(params: dict[str, Any]) -> dict[str, Any]:
    """Inline keyboards belong to the message; a reply keyboard is not part of the Message
    Telegram returns, so the fake keeps it under a private key for tests."""
    markup = params.get("reply_markup")
    if not markup:
        return {}
    if "inline_keyboard" in markup:
        return {"reply_markup": markup}
    return {"_keyboard": markup}


def public(message: Any) -> Any:
    """A stored message as Telegram returns it (without the fake's private keys)."""
    if isinstance(message, list):
        return [public(m) for m in message]
    if isinstance(message, dict):
        return {k: v for k, v in message.items() if not k.startswith("_")}
    return message


def _set_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
    if markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def _brief(params: dict[str, Any]) -> str:
    shown = {k: (v[:50] if isinstance(v, str) else v) for k, v in params.items()
             if k in ("text", "caption", "message_id", "action", "callback_query_id")}
    return json.dumps(shown, ensure_ascii=False)


class FakeUser:
    """A Telegram user in a private chat with the bot."""

    def __init__(self, tg: FakeTelegram, user_id: int, first_name: str,
                 language_code: str | None):
        self.tg = tg
        self.id = user_id
        self.chat_id = user_id
        self.info = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            self.info["language_code"] = language_code
        self.cursor = 0  # events before this index were already consumed by expect()

    def _message(self, **content: Any) -> dict[str, Any]:
        return {"message_id": self.tg.next_message_id(self.chat_id), "date": int(time.time()),
                "chat": {"id": self.chat_id, "type": "private",
                         "first_name": self.info["first_name"]},
                "from": self.info, **content}

    async def send(self, text: str) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command)}]
        message = self._message(**content)
        await self.tg.push_update({"message": message})
        return message

    def photo_message(self, data: bytes, caption: str | None = None,
                      media_group_id: str | None = None) -> dict[str, Any]:
        """A photo message as Telegram makes it: a small thumbnail size and the full size."""
        dims = image_size(data) or (1, 1)
        full = self.tg.register_file(data, suffix="jpg")
        thumb = self.tg.register_file(_thumbnail(data), suffix="jpg")
        scale = 90 / max(dims)
        content: dict[str, Any] = {"photo": [
            {"file_id": thumb.file_id, "file_unique_id": thumb.unique_id,
             "width": max(1, round(dims[0] * scale)), "height": max(1, round(dims[1] * scale)),
             "file_size": thumb.size},
            {"file_id": full.file_id, "file_unique_id": full.unique_id,
             "width": dims[0], "height": dims[1], "file_size": full.size}]}
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        return self._message(**content)

    def document_message(self, data: bytes, file_name: str, mime_type: str | None,
                         caption: str | None = None, media_group_id: str | None = None,
                         declared_size: int | None = None) -> dict[str, Any]:
        stored = self.tg.register_file(data, declared_size, suffix=file_name.rsplit(".")[-1])
        document = {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                    "file_name": file_name, "file_size": stored.size}
        if mime_type:
            document["mime_type"] = mime_type
        content: dict[str, Any] = {"document": document}
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        return self._message(**content)

    async def send_clip(self, kind: str, data: bytes, *, duration: int, width: int,
                        height: int, mime_type: str = "video/mp4") -> dict[str, Any]:
        """An animation, video or video note message, with the metadata Telegram adds."""
        stored = self.tg.register_file(data, suffix="mp4")
        clip: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                                "duration": duration, "file_size": stored.size}
        if kind == "video_note":
            clip["length"] = width
        else:
            clip.update(width=width, height=height, mime_type=mime_type)
        message = self._message(**{kind: clip})
        await self.tg.push_update({"message": message})
        return message

    async def send_photo(self, data: bytes, caption: str | None = None) -> dict[str, Any]:
        message = self.photo_message(data, caption)
        await self.tg.push_update({"message": message})
        return message

    async def send_document(self, data: bytes, file_name: str, mime_type: str | None,
                            caption: str | None = None, declared_size: int | None = None,
                            ) -> dict[str, Any]:
        message = self.document_message(data, file_name, mime_type, caption,
                                        declared_size=declared_size)
        await self.tg.push_update({"message": message})
        return message

    async def send_album(self, items: list[tuple[str, bytes]],
                         captions: list[str | None] | None = None) -> list[dict[str, Any]]:
        """items: ("photo", bytes) or ("document:<name>:<mime>", bytes), in album order."""
        group = secrets.token_hex(6)
        captions = captions or [None] * len(items)
        messages = []
        for (kind, data), caption in zip(items, captions, strict=True):
            if kind == "photo":
                messages.append(self.photo_message(data, caption, group))
            else:
                _, name, mime = kind.split(":", 2)
                messages.append(self.document_message(data, name, mime, caption, group))
        for message in messages:
            await self.tg.push_update({"message": message})
        return messages

    async def press(self, sent: Sent, button: str) -> str:
        """Press the inline button of ``sent`` whose text contains ``button`` (or whose
        callback data equals it, or starts with it and a ':' - the fields after it, such as
        a result id, left out); returns the callback query id."""
        matches = [data for text, data in sent.buttons
                   if button in text or button == data or data.startswith(button + ":")]
        if not matches:
            raise AssertionError(f"no button {button!r} in {sent.buttons}")
        return await self.press_data(sent, matches[0])

    async def press_data(self, sent: Sent, data: str) -> str:
        query_id = secrets.token_hex(8)
        self.tg.callback_answers[query_id] = {"chat": self.chat_id}
        await self.tg.push_update({"callback_query": {
            "id": query_id, "from": self.info, "chat_instance": str(self.chat_id),
            "message": public(sent.message or sent._original), "data": data}})
        return query_id

    async def callback_answer(self, query_id: str, timeout: float = 10.0) -> dict[str, Any]:
        await self.tg.wait_event(lambda e: e.method == "answerCallbackQuery"
                                 and e.params.get("callback_query_id") == query_id, timeout)
        return self.tg.callback_answers[query_id]

    # --- awaiting the bot ---------------------------------------------------------------------

    async def expect(self, predicate: Callable[[Sent], bool] = lambda s: True,
                     timeout: float = 15.0, methods: set[str] = SEND_METHODS) -> Sent:
        """The next message the bot sends to this chat that matches; earlier non-matching
        ones are skipped."""
        def match(event: Event) -> bool:
            if event.chat_id != self.chat_id or event.method not in methods:
                return False
            return any(predicate(s) for s in self._sent(event))

        index, event = await self.tg.wait_event(match, timeout, self.cursor)
        self.cursor = index + 1
        return next(s for s in self._sent(event) if predicate(s))

    async def expect_edit(self, message_id: int, predicate: Callable[[Sent], bool],
                          timeout: float = 15.0) -> Sent:
        """Waits until an edit of ``message_id`` makes ``predicate`` true."""
        def match(event: Event) -> bool:
            return (event.chat_id == self.chat_id and event.method in EDIT_METHODS
                    and event.params.get("message_id") == message_id
                    and isinstance(event.result, dict)
                    and predicate(self._as_sent(event, event.result)))

        index, event = await self.tg.wait_event(match, timeout, 0)
        return self._as_sent(event, event.result)

    async def expect_deleted(self, message_id: int, timeout: float = 15.0) -> None:
        await self.tg.wait_event(lambda e: e.chat_id == self.chat_id
                                 and e.method == "deleteMessage"
                                 and e.params.get("message_id") == message_id
                                 and e.result is True, timeout)

    def _sent(self, event: Event) -> list[Sent]:
        results = event.result if isinstance(event.result, list) else [event.result]
        return [self._as_sent(event, r) for r in results
                if isinstance(r, dict) and "message_id" in r]

    def _as_sent(self, event: Event, message: dict[str, Any]) -> Sent:
        return Sent(self.tg, self.chat_id, message["message_id"], event.method, event)

    def sent(self) -> list[Sent]:
        """Every message the bot has sent to this chat so far."""
        out: list[Sent] = []
        for event in self.tg.events:
            if event.chat_id == self.chat_id and event.method in SEND_METHODS:
                out.extend(self._sent(event))
        return out

    def photos(self) -> list[bytes]:
        return [s.photo for s in self.sent() if s.method == "sendPhoto" and s.photo]

    def actions(self) -> list[str]:
        return [e.params.get("action", "") for e in self.tg.calls("sendChatAction", self.chat_id)]


def _thumbnail(data: bytes) -> bytes:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            img.thumbnail((90, 90))
            out = io.BytesIO()
            img.save(out, "JPEG")
            return out.getvalue()
    except Exception:
        return data[:64]

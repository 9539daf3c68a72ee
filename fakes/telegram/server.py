"""The fake Bot API server: state, the HTTP handlers, updates and waits (the methods
themselves are :mod:`fakes.telegram.methods`)."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from fakes.telegram.methods import BotApiMethods
from fakes.telegram.records import (
    INT_FIELDS,
    JSON_FIELDS,
    ApiError,
    Event,
    StoredFile,
    brief,
    image_size,
    public,
)
from fakes.telegram.user import FakeUser

TOKEN = "123456789:TEST-token-for-the-fake-api"


class FakeTelegram(BotApiMethods):
    def __init__(self, token: str = TOKEN,
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
            recent = "\n  ".join(f"{e.method} chat={e.chat_id} {brief(e.params)}"
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


"""What the fake Bot API stores and answers with: limits, errors, files, recorded calls
(:class:`Event`), a bot message as a test sees it (:class:`Sent`), and message helpers."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakes.telegram.server import FakeTelegram

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



def inline_markup(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    return markup if markup and markup.get("inline_keyboard") else None


def any_markup(params: dict[str, Any]) -> dict[str, Any]:
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


def set_markup(message: dict[str, Any], markup: dict[str, Any] | None) -> None:
    if markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def brief(params: dict[str, Any]) -> str:
    shown = {k: (v[:50] if isinstance(v, str) else v) for k, v in params.items()
             if k in ("text", "caption", "message_id", "action", "callback_query_id")}
    return json.dumps(shown, ensure_ascii=False)



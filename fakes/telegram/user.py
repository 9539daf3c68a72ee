"""A Telegram user of the fake Bot API: sends messages, presses buttons, awaits the bot."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fakes.telegram.records import (
    EDIT_METHODS,
    SEND_METHODS,
    Event,
    Sent,
    image_size,
    public,
)

if TYPE_CHECKING:
    from fakes.telegram.server import FakeTelegram

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

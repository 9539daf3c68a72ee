"""The Bot API methods of the fake server, one ``_m_<method>`` each (``getUpdates``,
``sendPhoto``, ``editMessageText`` ...), with Telegram's semantics where they matter."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

from fakes.telegram.records import (
    PHOTO_UPLOAD_LIMIT,
    TELEGRAM_DOWNLOAD_LIMIT,
    UPLOAD_LIMIT,
    ApiError,
    StoredFile,
    any_markup,
    inline_markup,
    set_markup,
)


class BotApiMethods:
    """Mixed into :class:`~fakes.telegram.server.FakeTelegram`, whose state they use."""

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
                                     **any_markup(params))

    async def _m_sendphoto(self, params, files):
        source = self._input_file(params.get("photo"), files, "photo")
        if isinstance(source, bytes) and len(source) > PHOTO_UPLOAD_LIMIT:
            raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
        content: dict[str, Any] = {"photo": self._photo_sizes(source)}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._new_bot_message(params["chat_id"], **content, **any_markup(params))

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
        return self._new_bot_message(params["chat_id"], **content, **any_markup(params))

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
        return self._new_bot_message(params["chat_id"], **content, **any_markup(params))

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
        new_markup = inline_markup(params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        if text == message["text"] and new_markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        message["text"] = text
        set_markup(message, new_markup)
        return message

    async def _m_editmessagecaption(self, params, files):
        message = self._stored(params)
        message["caption"] = params.get("caption") or ""
        set_markup(message, inline_markup(params))
        return message

    async def _m_editmessagereplymarkup(self, params, files):
        message = self._stored(params)
        new_markup = inline_markup(params)
        if new_markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        set_markup(message, new_markup)
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
        set_markup(message, inline_markup(params))
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



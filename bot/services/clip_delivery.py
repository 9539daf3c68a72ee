"""Sending a stylized clip back the way it came: a GIF or an animation as an animation, a
video as a video, a video note as a video note (square, so ours stays one)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge
from aiogram.types import BufferedInputFile

from bot.services.torchserve import StyledClip
from bot.texts import Translator

log = logging.getLogger(__name__)

# the handler's clip error codes -> the text explaining each
CLIP_ERRORS = {"clip_too_long": "err_clip_too_long", "corrupt_clip": "err_corrupt_clip",
               "unsupported_codec": "err_unsupported_codec", "bad_clip": "err_corrupt_clip"}


def is_clip_spec(spec: dict[str, Any]) -> bool:
    """Whether the job's content is a clip (see bot.clipflow.clip_ref)."""
    return (spec.get("content") or {}).get("kind") == "clip"


def _seconds(result: StyledClip) -> int:
    try:
        return max(1, round(float(result.field("seconds"))))
    except ValueError:
        return 0


async def deliver_clip(bot: Bot, chat_id: int, tr: Translator, spec: dict[str, Any],
                       result: StyledClip) -> None:
    """Send ``result``; a refused animation or video falls back to a document."""
    media = spec["content"].get("media")
    style = tr.title(spec["preset"]) if spec.get("preset") else tr("style_own")
    frames = result.field("frames") or "?"
    caption = tr("clip_caption", style=style, frames=frames, size=result.field("size") or "?")
    file = BufferedInputFile(result.data, f"styled.{result.extension}")
    duration = _seconds(result) or None
    w, _, h = (result.field("size") or "x").partition("x")
    width, height = (int(w), int(h)) if w.isdigit() and h.isdigit() else (None, None)
    try:
        if media == "video_note" and result.content_type == "video/mp4" and width == height:
            await bot.send_video_note(chat_id, file, duration=duration, length=width)
            return
        if media == "video" and result.content_type == "video/mp4":
            await bot.send_video(chat_id, file, duration=duration, width=width, height=height,
                                 caption=caption, supports_streaming=True)
            return
        await bot.send_animation(chat_id, file, duration=duration, width=width, height=height,
                                 caption=caption)
    except (TelegramBadRequest, TelegramEntityTooLarge) as exc:
        log.info("clip refused as %s (%s), sending a document", media, exc.message)
        await bot.send_document(chat_id, BufferedInputFile(result.data,
                                                           f"styled.{result.extension}"),
                                caption=caption)

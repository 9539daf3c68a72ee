"""Clips in the conversation (GIFs, Telegram animations, videos, video notes), free of I/O.

Telegram describes a clip before it is downloaded (duration, size, bytes), so the limits the
server reports (``clips`` in its presets answer) are checked and explained before any work.
A clip is always the content: a style is a picture. Only ``file_id`` values are kept.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import Message

from bot.flow import Rejection

CLIP_MIMES = ("image/gif", "video/mp4", "video/webm", "video/quicktime", "video/x-matroska")
CLIP_EXTENSIONS = (".gif", ".mp4", ".webm", ".mov", ".m4v")
DEFAULT_LIMITS = {"max_seconds": 15, "max_frames": 300, "max_fps": 15, "size": 480,
                  "max_bytes": 20 * 1024 * 1024}


def is_clip_document(message: Message) -> bool:
    """A GIF or video sent as a file (not as an animation or video)."""
    document = message.document
    if document is None or message.animation is not None:
        return False
    mime = (document.mime_type or "").lower()
    name = (document.file_name or "").lower()
    return mime in CLIP_MIMES or (mime in ("", "application/octet-stream")
                                  and name.endswith(CLIP_EXTENSIONS))


def is_clip_message(message: Message) -> bool:
    return bool(message.animation or message.video or message.video_note
                or is_clip_document(message))


def clip_ref(message: Message, max_bytes: int) -> dict[str, Any] | Rejection | None:
    """The clip in ``message`` as a reference dict (``kind`` "clip", ``media`` what Telegram
    called it), a :class:`Rejection` for a file over the download limit, or None."""
    media, item = None, None
    for name in ("animation", "video", "video_note"):
        item = getattr(message, name)
        if item is not None:
            media = name
            break
    if media is None and is_clip_document(message):
        media, item = "document", message.document
    if item is None:
        return None
    size = int(getattr(item, "file_size", 0) or 0)
    if size > max_bytes:
        return Rejection("file_too_large", {"size_mb": f"{size / 2**20:.1f}",
                                            "limit_mb": f"{max_bytes / 2**20:.0f}"})
    side = getattr(item, "length", None)  # a video note is a square
    return {"file_id": item.file_id, "uid": item.file_unique_id, "kind": "clip",
            "media": media, "bytes": size, "name": getattr(item, "file_name", None) or media,
            "duration": int(getattr(item, "duration", 0) or 0),
            "width": int(getattr(item, "width", 0) or side or 0),
            "height": int(getattr(item, "height", 0) or side or 0)}


def limits_of(extra: dict[str, Any] | None) -> dict[str, Any]:
    """The server's clip limits (its presets answer), or the defaults of an older server."""
    limits = dict(DEFAULT_LIMITS)
    clips = (extra or {}).get("clips")
    if isinstance(clips, dict):
        limits.update({k: v for k, v in clips.items() if k in DEFAULT_LIMITS
                       and isinstance(v, int | float)})
    return limits


def over_limits(ref: dict[str, Any], limits: dict[str, Any]) -> Rejection | None:
    """Why a clip would be refused, from what Telegram says about it (before downloading)."""
    values = limit_values(limits) | {"duration": ref.get("duration", 0)}
    if ref.get("duration", 0) > limits["max_seconds"]:
        return Rejection("clip_too_long", values)
    if ref.get("bytes", 0) > limits["max_bytes"]:
        return Rejection("clip_too_big", values | {"size_mb": f"{ref['bytes'] / 2**20:.1f}"})
    return None


def limit_values(limits: dict[str, Any]) -> dict[str, Any]:
    """The placeholders of the limits line of the texts."""
    return {"max_seconds": f"{limits['max_seconds']:g}", "max_frames": limits["max_frames"],
            "max_fps": f"{limits['max_fps']:g}", "clip_size": limits["size"],
            "limit_mb": f"{limits['max_bytes'] / 2**20:.0f}"}


def expected_frames(ref: dict[str, Any], limits: dict[str, Any]) -> int:
    """About how many frames the server will stylize (Telegram does not give the fps; a
    GIF document's duration is unknown, so the cap is the estimate)."""
    duration = ref.get("duration") or limits["max_seconds"]
    return int(min(limits["max_frames"], round(duration * limits["max_fps"])))

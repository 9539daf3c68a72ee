"""The conversation's rules, free of Telegram I/O so they are easy to test.

Per-user FSM data (JSON-serializable, so Redis can hold it):

* ``content`` / ``style``: an image reference (:func:`image_ref`), the last of each kind wins;
* ``preset``: a preset name chosen instead of a style image (clears ``style`` and vice versa);
* ``pending``: an image whose role we asked about;
* ``size``: the chosen output size; ``lang``: the chosen language;
* ``results``: recent result ids -> the job spec that made them (to re-make evicted files, and
  so the buttons under a result act on *that* result's images, not on the latest upload);
* ``strength``, ``keep_colors``, ``brush``: the style controls the user prefers
  (:mod:`bot.controls`); ``mix``: a style mixed into the current one (it belongs to the style:
  a new style ends it);
* ``owner``: the user's owner id in the style store, set once they use a learned style
  (:mod:`bot.learnflow`), sent with every job so ``preset``/``mix`` may name one.

Only Telegram ``file_id`` values are kept, never image bytes: files are downloaded again
from Telegram when a job needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message

from bot.controls import controls_of
from bot.imageinfo import looks_like_image_name

MAX_KEPT_RESULTS = 5


class NextRole(StatesGroup):
    """Set by /content and /style: the role of the next image (one-shot)."""

    content = State()
    style = State()


@dataclass(frozen=True)
class Rejection:
    """Why an upload cannot be used: a text key and its values."""

    key: str
    values: dict[str, Any]


def image_ref(message: Message, max_bytes: int) -> dict[str, Any] | Rejection | None:
    """The image in ``message`` as a reference dict, a :class:`Rejection`, or None when the
    message holds no photo or document at all."""
    if message.photo:
        photo = message.photo[-1]  # the largest size Telegram made
        if photo.file_size and photo.file_size > max_bytes:
            return _too_large(photo.file_size, max_bytes)
        return {"file_id": photo.file_id, "uid": photo.file_unique_id, "kind": "photo",
                "bytes": photo.file_size or 0, "name": "photo.jpg"}
    document = message.document
    if document is None:
        return None
    mime = (document.mime_type or "").lower()
    name = document.file_name or "file"
    untyped = mime in ("", "application/octet-stream")
    raster = mime.startswith("image/") and mime != "image/svg+xml"
    if not (raster or (untyped and looks_like_image_name(name))):
        return Rejection("not_an_image", {"name": name, "mime": mime or "unknown type"})
    if document.file_size and document.file_size > max_bytes:
        return _too_large(document.file_size, max_bytes)
    return {"file_id": document.file_id, "uid": document.file_unique_id, "kind": "document",
            "bytes": document.file_size or 0, "name": name}


def _too_large(size: int, limit: int) -> Rejection:
    return Rejection("file_too_large", {"size_mb": f"{size / 2**20:.1f}",
                                        "limit_mb": f"{limit / 2**20:.0f}"})


def decide_role(caption_role: str | None, next_role: str | None, data: dict[str, Any]) -> str:
    """'content', 'style' or 'ask' for a single new image.

    A caption wins, then /content or /style; otherwise the first image is the content, the
    next one the style, and once both are known we ask rather than guess.
    """
    if caption_role in ("content", "style"):
        return caption_role
    if next_role in ("content", "style"):
        return next_role
    if not data.get("content"):
        return "content"
    if not data.get("style") and not data.get("preset"):
        return "style"
    return "ask"


def album_roles(captions: list[str | None], parse) -> tuple[int, int]:
    """Indexes of (content, style) in a two-image album: by captions when they say so,
    else content first."""
    roles = [parse(c) for c in captions]
    if roles[0] == "style" or roles[1] == "content":
        return 1, 0
    return 0, 1


def assign(data: dict[str, Any], role: str, ref: dict[str, Any]) -> dict[str, Any]:
    """The FSM data update that puts ``ref`` in ``role`` (a style image replaces a preset)."""
    if role == "content":
        return {"content": ref, "pending": None}
    return new_style(style=ref)


def new_style(*, style: dict[str, Any] | None = None, preset: str | None = None
              ) -> dict[str, Any]:
    """The FSM data update for a newly chosen style (an image or a preset): it replaces the
    old one and ends any mix, which was a mix *with the old style*."""
    return {"style": style, "preset": preset, "pending": None, "mix": None, "mixing": None}


def missing(data: dict[str, Any]) -> str | None:
    """The text key telling the user what is still missing, or None when a job can run."""
    if not data.get("content"):
        return "need_content"
    if not data.get("style") and not data.get("preset"):
        return "need_style"
    return None


def job_spec(data: dict[str, Any], sizes: list[int], document: bool = False) -> dict[str, Any]:
    """What a job needs (JSON-serializable): image references, preset, sizes, controls."""
    return {"content": data["content"], "style": data.get("style") if not data.get("preset")
            else None, "preset": data.get("preset"), "sizes": list(sizes),
            "document": document, "controls": controls_of(data), "owner": data.get("owner")}


def sheet_spec(base: dict[str, Any], size: int, rid: str = "") -> dict[str, Any]:
    """A contact-sheet job: ``base``'s content in every preset (its controls apply, its style
    not); ``rid``, the result it was asked under, travels to the sheet's buttons."""
    return {"content": base["content"], "style": None, "preset": None, "sizes": [size],
            "document": False, "controls": dict(base.get("controls") or {}), "sheet": True,
            "owner": base.get("owner"), "rid": rid}


def result_spec(data: dict[str, Any], rid: str) -> dict[str, Any] | None:
    """A copy of the spec that made result ``rid`` (None once it left the bounded history),
    ready to run again: a re-run is a photo unless a button asks for the file."""
    spec = (data.get("results") or {}).get(rid)
    if not spec:
        return None
    return {**spec, "document": False, "controls": dict(spec.get("controls") or {})}


def is_current(data: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether ``spec`` was made from the user's current photo: then a style chosen under its
    result also becomes the current style (for the next photo too)."""
    content = data.get("content") or {}
    return bool(content) and content.get("uid") == (spec.get("content") or {}).get("uid")


def remember_result(data: dict[str, Any], rid: str, spec: dict[str, Any]) -> dict[str, Any]:
    kept = dict(data.get("results") or {})
    kept[rid] = spec
    while len(kept) > MAX_KEPT_RESULTS:
        kept.pop(next(iter(kept)))
    return {"results": kept}

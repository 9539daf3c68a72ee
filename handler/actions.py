"""The actions: requests that need no forward pass, parsed and answered in one place.

A TorchServe model has one prediction endpoint, so everything that is not a stylization
arrives there as ``action=NAME`` (or ``cancel=<token>``). These are answered from what the
worker holds already - the presets, the previews, the style store, the cancel folder - so
the handler answers them in ``preprocess``, the way TorchServe's own ``describe`` request
is answered outside the three phases: they never wait behind the batch's photos and clips.

* ``presets``: the listing a client builds its menus from (also the ``describe`` answer);
* ``preview`` (``style_id``): a preset's preview picture, or a learned style's thumbnail;
* ``forget`` (``style_id``) and ``rename`` (``style_id``, ``new_name``): one of the owner's
  learned styles (:mod:`msgnet.learning.style_store`);
* ``cancel=<token>``: stop the clip or fit whose request carried ``cancel_token=<token>``
  (:mod:`handler.cancel`; the clip's own worker is busy with it).

``action=learn`` and ``action=sheet`` are model work: :mod:`handler.learning`,
:mod:`handler.parsing`. CONTRIBUTING.md says how to add an action.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handler import errors
from handler.answers import Answer
from handler.fields import Fields, store_name
from handler.learned import NAME_EXISTS, store_error
from handler.learning import LEARN_MODEL
from msgnet.inference.control_values import BRUSHES, MAX_STYLES
from msgnet.inference.sheet import MAX_CELL, MIN_CELL
from msgnet.learning import style_store
from msgnet.learning.style_store import DEFAULT_OWNER, StyleStore

if TYPE_CHECKING:
    from handler.msgnet_handler import MsgnetHandler

log = logging.getLogger(__name__)

ACTIONS = ("presets", "preview", "forget", "rename")
PREVIEW_DIR = Path("presets") / "previews"


@dataclass(frozen=True)
class CancelRequest:
    """``cancel=<token>``: stop the clip whose request carried ``cancel_token=<token>``."""

    token: str


@dataclass(frozen=True)
class ActionRequest:
    action: str            # "presets" | "preview" | "forget" | "rename"
    style_id: str | None
    owner: str = DEFAULT_OWNER
    new_name: str = ""     # ``rename`` only: the learned style's new name


# ------------------------------------------------------------------------------ parsing
def parse_cancel(fields: Fields) -> CancelRequest:
    if any(fields.present(f) for f in ("content", "content_tensor")):
        raise errors.bad_option("cancel: a cancel request carries only the cancel token of "
                                "the clip to stop, no content", "cancel")
    return CancelRequest(fields.token("cancel"))


def parse_action(action: str, style_id: str | None, owner: str,
                 fields: Fields) -> ActionRequest:
    """One of :data:`ACTIONS`; ``forget`` and ``rename`` check their names as store names
    (never paths)."""
    if action == "presets":
        return ActionRequest("presets", style_id, owner)
    if style_id is None:
        message = ("action 'preview' needs a style_id" if action == "preview" else
                   f"action {errors.shown(action)} needs the learned style as style_id")
        raise errors.missing_field(message, "style_id")
    if action == "preview":
        return ActionRequest("preview", style_id, owner)
    name = store_name(style_id, "style_id")
    if action == "forget":
        return ActionRequest(action, name, owner)
    raw = fields.text("new_name").strip()
    if not raw:
        raise errors.missing_field("action 'rename' needs the new name as new_name",
                                   "new_name")
    return ActionRequest(action, name, owner, store_name(raw, "new_name"))


# ------------------------------------------------------------------------------ answers
def answer(request: ActionRequest | CancelRequest, handler: MsgnetHandler) -> Answer:
    """The answer to an action, from the worker's state; raises RequestError."""
    if isinstance(request, CancelRequest):
        return record_cancel(handler, request.token)
    if request.action == "presets":
        return Answer(json.dumps(presets_listing(handler, request.owner)))
    presets = handler.stylizer.presets
    if request.action == "forget":
        return Answer(json.dumps(forget_style(handler.store, presets, request.style_id,
                                              request.owner)))
    if request.action == "rename":
        return Answer(json.dumps(rename_style(handler.store, presets, request.style_id,
                                              request.new_name, request.owner)))
    return preview(handler, request.style_id, request.owner)


def record_cancel(handler: MsgnetHandler, token: str) -> Answer:
    """Record a clip's cancel in the folder every worker of this host shares (the clip's
    own worker is busy with it): it stops before its next chunk of frames."""
    cancels = handler.cancels
    try:
        cancels.request(token)
    except OSError as exc:
        log.error("cancel not recorded in %s: %s", cancels.directory, exc)
        raise errors.internal_error("the cancel could not be recorded") from exc
    log.info("clip cancel recorded: %s", token)
    return Answer(json.dumps({"cancelled": token}))


def preview(handler: MsgnetHandler, name: str, owner: str) -> Answer:
    """A preset's preview picture (packed in the .mar), or a learned style's thumbnail."""
    stylizer = handler.stylizer
    names = stylizer.preset_names()
    if name in names:
        path = preview_path(handler.model_dir, name)
        if path is None:
            raise errors.RequestError(404, errors.NO_PREVIEW,
                                      f"preset {errors.shown(name)} has no preview image")
        return Answer(path.read_bytes(), "image/jpeg")
    learned, _ = handler.learned.listing(stylizer, owner)
    if name not in learned:
        raise errors.unknown_preset(name, [*names, *learned])
    # a learned style's preview is the thumbnail of its picture (a known name)
    path = handler.store.thumbnail_path(name, owner)
    if not path.is_file():
        raise errors.RequestError(404, errors.NO_PREVIEW,
                                  f"learned style {errors.shown(name)} has no preview image")
    return Answer(path.read_bytes(), "image/jpeg")


def preview_path(model_dir: Path, name: str) -> Path | None:
    # ``name`` is a known preset name, never a client-chosen path
    path = model_dir / PREVIEW_DIR / f"{name}.jpg"
    return path if path.is_file() else None


def presets_listing(handler: MsgnetHandler, owner: str = DEFAULT_OWNER) -> dict:
    """What a client needs to offer this model's styles and limits (``action=presets``)."""
    settings, stylizer = handler.settings, handler.stylizer
    usable, stale = handler.learned.listing(stylizer, owner)
    return {
        "presets": [{"name": n, "preview": preview_path(handler.model_dir, n) is not None}
                    for n in stylizer.preset_names()],
        "default_size": settings.default_size,
        "min_size": settings.min_size,
        "max_size": settings.max_size,
        "sizes": settings.sizes,
        "variant": stylizer.variant_name,
        "default_style_size": settings.default_style_size,
        "controls": {"strength": [0.0, 1.0], "keep_colors": True,
                     "brushes": {b: stylizer.brush_style_size(b) for b in BRUSHES},
                     "max_styles": MAX_STYLES, "sheet_sizes": [MIN_CELL, MAX_CELL]},
        "formats": ["jpeg", "png"],
        "clips": {**settings.clip_limits().describe(), "reference": settings.clip_reference,
                  "inputs": ["gif", "webp", "apng", "mp4", "webm", "mov"],
                  "outputs": {"animation": "image/gif", "video": "video/mp4"},
                  "summary": settings.clip_limits().summary(), "cancel": True},
        "max_bytes": settings.max_bytes,
        # the owner's learned styles: usable by name as style_id; other_weights were
        # learned with other weights and are refused (409 weights_mismatch)
        "learned": {"owner": owner, "styles": usable, "other_weights": stale,
                    "max_per_owner": settings.store_max_per_owner,
                    "learn_model": LEARN_MODEL, "max_steps": settings.learn_max_steps},
        "model_version": handler.version,
        "weights": weights_summary(handler),
    }


def weights_summary(handler: MsgnetHandler) -> dict:
    weights = handler.weights
    summary: dict[str, Any] = {"file": handler.weights_file, "layout": weights.layout,
                               "ngf": int(weights.net.ngf)}
    for key, value in list(weights.metadata.items())[:20]:
        if isinstance(value, (bool, int, float)):
            summary.setdefault(str(key), value)
        elif isinstance(value, str):
            summary.setdefault(str(key), value[:200])
    return summary


def forget_style(store: StyleStore, presets, name: str, owner: str) -> dict:
    """``action=forget``: delete ``owner``'s learned style ``name`` (its thumbnail too); a
    built-in preset is no learned style, so it is refused rather than looked up."""
    if name in presets:
        raise errors.bad_option(f"style_id: {errors.shown(name)} is a built-in preset, not a "
                                "learned style", "style_id")
    try:
        store.delete(name, owner)
    except style_store.StyleStoreError as exc:
        raise store_error(exc, "style_id") from exc
    log.info("learned style %s of %s deleted", name, owner)
    return {"forgotten": name, "owner": owner}


def rename_style(store: StyleStore, presets, name: str, new_name: str, owner: str) -> dict:
    """``action=rename``: ``owner``'s learned style ``name`` is ``new_name`` from now on
    (a name taken by another style of the owner, or by a preset, is a 409)."""
    if name in presets:
        raise errors.bad_option(f"style_id: {errors.shown(name)} is a built-in preset, not a "
                                "learned style", "style_id")
    if new_name in presets or store.exists(new_name, owner):
        what = "a built-in preset" if new_name in presets else "taken by another style"
        raise errors.RequestError(409, NAME_EXISTS, f"new_name: {errors.shown(new_name)} is "
                                  f"{what}: choose another name", "new_name")
    try:
        store.rename(name, new_name, owner)
    except style_store.StyleStoreError as exc:
        raise store_error(exc, "style_id" if isinstance(exc, style_store.StyleNotFound)
                          else "new_name") from exc
    log.info("learned style %s of %s renamed to %s", name, owner, new_name)
    return {"renamed": name, "to": new_name, "owner": owner}

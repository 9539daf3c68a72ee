"""Learned styles by name on the photo model: a ``style_id`` that is no preset of the served
weights is looked up in the requester's part of the style store
(:mod:`msgnet.learning.style_store`).

The store is a folder every worker shares (and the ``msgnet_learn`` worker writes), so a style
learned, re-learned or deleted by another process must show at once: a target is cached under
its file's path, ``mtime`` and size, which a re-learn (an atomic rename of a new file) changes,
and every request ``stat``s the file first, so a deleted style is never served from the cache.
Store errors become the handler's per-request answers (:func:`store_error`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from handler import errors
from handler.settings import HandlerSettings
from handler.style_cache import StyleCache
from msgnet.learning import style_store
from msgnet.learning.style_store import StyleStore

log = logging.getLogger(__name__)

WEIGHTS_MISMATCH = "weights_mismatch"
UNREADABLE_STYLE = "unreadable_style"
NAME_EXISTS = "name_exists"
STORE_FULL = "store_full"
STORE_NOT_WRITABLE = "store_not_writable"


def open_store(settings: HandlerSettings) -> StyleStore:
    """The store of ``settings.style_store`` (``MSGNET_STYLE_STORE``), else the CLI's default
    folder, with the settings' caps."""
    root = Path(settings.style_store) if settings.style_store else style_store.default_root()
    return StyleStore(root, max_per_owner=settings.store_max_per_owner,
                      max_bytes=settings.store_max_bytes)


def store_error(exc: style_store.StyleStoreError, field: str | None = "name"
                ) -> errors.RequestError:
    """A store error as the answer of the request that met it (the messages are for users;
    paths on the server are left out of them)."""
    message = str(exc)
    if isinstance(exc, style_store.InvalidStyleName):
        return errors.bad_option(f"{field}: {message}", field)
    if isinstance(exc, style_store.WeightsMismatch):
        return errors.RequestError(409, WEIGHTS_MISMATCH, message, "style_id")
    if isinstance(exc, style_store.StoreFull):
        text = ("the style store is full: delete styles first" if "is full" in message
                else message)
        return errors.RequestError(409, STORE_FULL, text, field)
    if isinstance(exc, style_store.StoreNotWritable):
        return errors.RequestError(409, STORE_NOT_WRITABLE, "the style store is read-only or "
                                   "cannot be written now, so nothing can be learned: try "
                                   "again later", field)
    if isinstance(exc, style_store.StyleNotFound):
        return errors.RequestError(404, errors.UNKNOWN_PRESET, message.split(" in ")[0],
                                   "style_id")
    if "exists already" in message:
        return errors.RequestError(409, NAME_EXISTS, message.split(":")[0] + ": choose "
                                   "another name, or send overwrite=true", field)
    return errors.RequestError(422, UNREADABLE_STYLE,
                               message.split(" (")[0] + ": learn it again", "style_id")


class LearnedStyles:
    """Targets of learned styles for one stylizer, through a shared LRU cache."""

    def __init__(self, store: StyleStore, cache: StyleCache[torch.Tensor]):
        self.store = store
        self.cache = cache

    def listing(self, stylizer, owner: str) -> tuple[list[str], list[str]]:
        """(usable, learned with other weights) names of ``owner``; never raises."""
        try:
            return style_store.learned_names(stylizer, self.store, owner)
        except OSError as exc:
            log.warning("the style store %s cannot be listed: %s", self.store.root, exc)
            return [], []

    def target(self, stylizer, name: str, owner: str) -> tuple[torch.Tensor, str]:
        """``name``'s target and its cache state: a preset of the weights (``preset``), else
        ``owner``'s learned style (``hit`` or ``miss``); a 404 lists both kinds."""
        if name in stylizer.presets:
            return stylizer.preset_target(name), "preset"
        info = self._stat(name, owner)
        if info is None:
            usable, _ = self.listing(stylizer, owner)
            raise errors.unknown_preset(name, [*stylizer.preset_names(), *usable])
        path, mtime_ns, size = info
        key = StyleCache.key(f"learned:{path}:{mtime_ns}:{size}:{stylizer.fingerprint}", 0)
        cached = self.cache.get(key)
        if cached is not None:
            return cached, "hit"
        try:
            target = self.store.load(name, owner, stylizer.fingerprint).target
        except style_store.StyleStoreError as exc:
            if not isinstance(exc, style_store.WeightsMismatch):
                log.warning("learned style %s of %s: %s", name, owner, exc)
            raise store_error(exc, "style_id") from exc
        target = target.to(stylizer.device).reshape(1, *target.shape[-2:])
        self.cache.put(key, target)
        return target, "miss"

    def _stat(self, name: str, owner: str) -> tuple[str, int, int] | None:
        if not style_store.NAME_PATTERN.match(name):
            return None
        path = self.store.path(name, owner)
        try:
            info = os.stat(path)
        except OSError:
            return None
        return str(path), info.st_mtime_ns, info.st_size

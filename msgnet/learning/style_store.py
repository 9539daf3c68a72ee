"""The style store: learned styles (:mod:`msgnet.learning.learn`) as files in one folder, per owner.

A learned style is a Gram target fitted for one set of weights, so each file records the
fingerprint of those weights, and a style learned with other weights is refused with a clear
message instead of being misapplied. Layout: ``ROOT/OWNER/NAME.pt`` (``torch.load``-able with
``weights_only=True``) plus ``NAME.jpg``, a thumbnail of the style picture for galleries.
Writes go to a temporary file first and are renamed into place, so a reader (another worker,
another process) never sees half a style, and a full or read-only disk loses nothing.

Caps: styles per owner and total bytes, both checked before anything is written.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from PIL import Image

FORMAT = "msgnet-learned-style"
FORMAT_VERSION = 1
ENV_VAR = "MSGNET_STYLE_STORE"
DEFAULT_OWNER = "local"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
OWNER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
THUMBNAIL_SIDE = 256
THUMBNAIL_BYTES = 32 * 1024  # what a thumbnail is counted as before it is written
DEFAULT_MAX_PER_OWNER = 20
DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # ~400 learned styles of 512 channels


class StyleStoreError(Exception):
    """A user-facing store error with a ready message."""


class InvalidStyleName(StyleStoreError):
    pass


class StyleNotFound(StyleStoreError):
    pass


class StoreFull(StyleStoreError):
    pass


class StoreNotWritable(StyleStoreError):
    pass


class WeightsMismatch(StyleStoreError):
    """The style was learned with other weights: its target means nothing to these."""


def default_root() -> Path:
    """``$MSGNET_STYLE_STORE``, else ``$XDG_DATA_HOME/msgnet/styles`` (~/.local/share/...)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "msgnet" / "styles"


def check_name(name: str) -> str:
    """The style name as stored; a clear error for anything that is not a plain short name."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidStyleName(
            f"invalid style name {name!r}: use 1-40 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit (no spaces, slashes or dots)")
    return name


def check_owner(owner: str) -> str:
    if not isinstance(owner, str) or not OWNER_PATTERN.match(owner) or ".." in owner:
        raise InvalidStyleName(f"invalid owner {owner!r}")
    return owner


@dataclass(frozen=True)
class LearnedStyle:
    """One stored style: its target and what it was learned with."""

    name: str
    owner: str
    target: torch.Tensor
    fingerprint: str
    created: str
    info: dict

    @property
    def thumbnail_name(self) -> str:
        return f"{self.name}.jpg"


class StyleStore:
    """Learned styles in ``root``; safe to share between processes (atomic renames)."""

    def __init__(self, root: str | Path | None = None,
                 max_per_owner: int = DEFAULT_MAX_PER_OWNER,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root) if root is not None else default_root()
        self.max_per_owner = max_per_owner
        self.max_bytes = max_bytes

    # ------------------------------------------------------------------ paths
    def _dir(self, owner: str) -> Path:
        return self.root / check_owner(owner)

    def path(self, name: str, owner: str = DEFAULT_OWNER) -> Path:
        return self._dir(owner) / f"{check_name(name)}.pt"

    def thumbnail_path(self, name: str, owner: str = DEFAULT_OWNER) -> Path:
        return self._dir(owner) / f"{check_name(name)}.jpg"

    # ------------------------------------------------------------------ reading
    def names(self, owner: str = DEFAULT_OWNER) -> list[str]:
        folder = self._dir(owner)
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.pt") if NAME_PATTERN.match(p.stem))

    def exists(self, name: str, owner: str = DEFAULT_OWNER) -> bool:
        return self.path(name, owner).is_file()

    def load(self, name: str, owner: str = DEFAULT_OWNER,
             fingerprint: str | None = None) -> LearnedStyle:
        """The stored style; :class:`WeightsMismatch` if ``fingerprint`` (of the weights in
        use) is given and differs from the one it was learned with."""
        path = self.path(name, owner)
        if not path.is_file():
            raise StyleNotFound(f"no learned style {name!r} in {self.root}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if data.get("format") != FORMAT:
                raise ValueError("not a learned style file")
            if int(data.get("format_version", 0)) > FORMAT_VERSION:
                raise ValueError(f"format version {data['format_version']} is newer than "
                                 "this code reads; update msgnet")
            style = LearnedStyle(name=name, owner=owner, target=data["target"].float(),
                                 fingerprint=str(data["weights_fingerprint"]),
                                 created=str(data.get("created", "")),
                                 info=dict(data.get("info") or {}))
        except (OSError, RuntimeError, ValueError, KeyError, AttributeError, EOFError,
                pickle.UnpicklingError) as exc:  # a damaged or foreign file
            raise StyleStoreError(f"learned style {name!r} cannot be read ({path}): {exc}"
                                  ) from exc
        if fingerprint is not None and style.fingerprint != fingerprint:
            raise WeightsMismatch(
                f"style {name!r} was learned with other weights ({style.fingerprint}; these "
                f"are {fingerprint}), so it cannot be applied to them: learn it again")
        return style

    def used_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    # ------------------------------------------------------------------ writing
    def check_room(self, name: str, owner: str = DEFAULT_OWNER, incoming: int = 0) -> None:
        """Raise :class:`StoreFull` before a fit when saving ``name`` would break a cap."""
        check_name(name)
        if not self.exists(name, owner) and len(self.names(owner)) >= self.max_per_owner:
            raise StoreFull(f"the style store holds {self.max_per_owner} styles for {owner}, "
                            "its limit: delete one first")
        if self.used_bytes() + incoming > self.max_bytes:
            raise StoreFull(f"the style store {self.root} is full ({self.max_bytes} bytes): "
                            "delete styles first")

    def check_writable(self, owner: str = DEFAULT_OWNER) -> None:
        """Raise :class:`StoreNotWritable` now, before a fit that would then be lost."""
        folder = self._dir(owner)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(folder / ".write-check", lambda f: f.write(b"ok"))
            (folder / ".write-check").unlink()
        except OSError as exc:
            raise StoreNotWritable(f"cannot write to the style store {self.root}: "
                                   f"{exc.strerror or exc}") from exc

    def save(self, name: str, target: torch.Tensor, fingerprint: str,
             owner: str = DEFAULT_OWNER, info: dict | None = None,
             thumbnail: Image.Image | None = None, overwrite: bool = False) -> Path:
        """Store a learned style; refuses an existing name unless ``overwrite``."""
        path = self.path(name, owner)
        if path.exists() and not overwrite:
            raise StyleStoreError(f"a learned style named {name!r} exists already: choose "
                                  "another name, or replace it (--force)")
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
                   "target": target.detach().to("cpu", torch.float32).contiguous(),
                   "weights_fingerprint": fingerprint,
                   "created": datetime.now(UTC).isoformat(timespec="seconds"),
                   "info": info or {}}
        self.check_room(name, owner, incoming=target.numel() * 4 + 4096
                        + (THUMBNAIL_BYTES if thumbnail is not None else 0))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if thumbnail is not None:
                thumb = thumbnail.convert("RGB")
                thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
                _atomic_write(self.thumbnail_path(name, owner),
                              lambda f: thumb.save(f, format="JPEG", quality=88))
            _atomic_write(path, lambda f: torch.save(payload, f))
        except OSError as exc:
            raise StoreNotWritable(f"cannot write to the style store {self.root}: "
                                   f"{exc.strerror or exc}") from exc
        return path

    def delete(self, name: str, owner: str = DEFAULT_OWNER) -> None:
        path = self.path(name, owner)
        if not path.is_file():
            raise StyleNotFound(f"no learned style {name!r} in {self.root}")
        try:
            path.unlink()
            self.thumbnail_path(name, owner).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreNotWritable(f"cannot delete from the style store {self.root}: "
                                   f"{exc.strerror or exc}") from exc

    def rename(self, name: str, new_name: str, owner: str = DEFAULT_OWNER) -> None:
        src, dst = self.path(name, owner), self.path(new_name, owner)
        if not src.is_file():
            raise StyleNotFound(f"no learned style {name!r} in {self.root}")
        if dst.exists():
            raise StyleStoreError(f"a learned style named {new_name!r} exists already")
        try:
            thumb = self.thumbnail_path(name, owner)
            if thumb.is_file():
                os.replace(thumb, self.thumbnail_path(new_name, owner))
            os.replace(src, dst)
        except OSError as exc:
            raise StoreNotWritable(f"cannot rename in the style store {self.root}: "
                                   f"{exc.strerror or exc}") from exc


def learned_target(stylizer, store: StyleStore, name: str,
                   owner: str = DEFAULT_OWNER) -> torch.Tensor:
    """The target of ``name``: a built-in preset, else ``owner``'s learned style of these
    weights (:class:`UnknownPresetError` lists both; a style of other weights is refused)."""
    from msgnet.inference.stylize import UnknownPresetError

    if (name in stylizer.presets or not NAME_PATTERN.match(name)
            or not store.exists(name, owner)):
        try:
            return stylizer.preset_target(name)
        except UnknownPresetError as exc:
            raise UnknownPresetError(name, [*stylizer.preset_names(),
                                            *store.names(owner)]) from exc
    return store.load(name, owner, stylizer.fingerprint).target


def learned_names(stylizer, store: StyleStore, owner: str = DEFAULT_OWNER
                  ) -> tuple[list[str], list[str]]:
    """(usable, learned with other weights) names of ``owner``'s styles, built-ins apart."""
    usable, stale = [], []
    for name in store.names(owner):
        if name in stylizer.presets:
            continue
        try:
            store.load(name, owner, stylizer.fingerprint)
            usable.append(name)
        except StyleStoreError:
            stale.append(name)
    return usable, stale


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

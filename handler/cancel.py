"""Cancelling a clip that is being stylized: a token, a file in a folder both workers share.

TorchServe 0.12 never tells a worker that the client of its request went away, so a clip whose
user gave up would otherwise run to its last frame and hold the clip model's only worker. A
clip request may carry ``cancel_token`` (16-64 characters of ``A-Za-z0-9_-``); a later
request with only ``cancel=<token>`` - to any msgnet model, in practice the photo model, since
the clip model's one worker is busy with the clip - is answered by whichever worker gets it,
which records the token as an empty file named after it in the cancel folder. The photo and
clip workers are separate processes on the same host, so that folder is the one thing they
share: ``cancel_dir`` in the handler settings, by default ``<temp dir>/msgnet-cancel``
(created 0700, refused when it is a symlink or another user's). The clip worker asks
``os.path.exists`` before each chunk of frames (:func:`msgnet.animation.stylize.stylize_clip`'s
``should_stop``), and removes the file when its clip ends. A cancel that arrives before its
clip has started (queued behind another) stops it before its first chunk. Files older than
:data:`STALE_S` (cancels of clips that had already ended) are swept on every cancel and
every cancellable clip.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handler.errors import bad_option, shown

log = logging.getLogger(__name__)

DIR_NAME = "msgnet-cancel"
STALE_S = 3600.0            # a token file older than this is swept
TOKEN_MIN, TOKEN_MAX = 16, 64
TOKEN_RE = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_MIN},{TOKEN_MAX}}}")


def check_token(raw: Any, field: str) -> str:
    """A cancel token from a request field, or a 400 naming ``field``: only the token itself
    ever becomes a file name, so no path can be smuggled in."""
    if isinstance(raw, (bytes, bytearray)):
        raw = bytes(raw).decode("utf-8", "replace")
    text = raw.strip() if isinstance(raw, str) else raw
    if not isinstance(text, str) or not TOKEN_RE.fullmatch(text):
        raise bad_option(f"{field} must be {TOKEN_MIN} to {TOKEN_MAX} characters of A-Z, a-z, "
                         f"0-9, '_' and '-', got {shown(raw)}", field)
    return text


def default_dir() -> Path:
    """``<temp dir>/msgnet-cancel``: ``tempfile.gettempdir()`` follows ``TMPDIR``, which the
    photo and clip workers of one TorchServe inherit alike."""
    return Path(tempfile.gettempdir()) / DIR_NAME


class CancelBox:
    """The cancel folder: :meth:`request` records a token, :meth:`requested` asks for it."""

    def __init__(self, directory: str | Path | None = None, stale_s: float = STALE_S):
        self.directory = Path(directory) if directory else default_dir()
        self.stale_s = stale_s

    def ensure(self) -> Path:
        """Create the folder (0700) or check the one there: a real folder of ours, private."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(self.directory)
        if not stat.S_ISDIR(info.st_mode):
            raise OSError(f"cancel_dir {self.directory} is not a folder (a symlink?)")
        if info.st_uid != os.getuid():
            raise PermissionError(f"cancel_dir {self.directory} belongs to uid {info.st_uid}, "
                                  f"not to this worker's {os.getuid()}")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(self.directory, 0o700)
        return self.directory

    def _path(self, token: str) -> Path:
        return self.directory / check_token(token, "cancel")

    def request(self, token: str) -> None:
        """Record a cancel of ``token`` (a second one just renews the file)."""
        path = self._path(token)
        self.ensure()
        self.sweep()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.utime(fd)
        finally:
            os.close(fd)

    def requested(self, token: str) -> bool:
        return os.path.exists(self._path(token))

    def clear(self, token: str) -> None:
        """Forget ``token`` (its clip has ended); never raises."""
        try:
            self._path(token).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the cancel file of a clip: %s", exc)

    def should_stop(self, token: str) -> Callable[[], bool]:
        """For :func:`msgnet.animation.stylize.stylize_clip`: whether ``token`` has been
        cancelled."""
        path = str(self._path(token))
        return lambda: os.path.exists(path)

    def sweep(self, now: float | None = None) -> int:
        """Remove token files older than ``stale_s``; how many went. Never raises."""
        now = time.time() if now is None else now
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return 0
        for entry in entries:
            try:
                if (TOKEN_RE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                        and now - entry.stat(follow_symlinks=False).st_mtime > self.stale_s):
                    os.unlink(entry.path)
                    removed += 1
            except OSError:  # another worker swept it first
                continue
        return removed

"""TorchServe's keys: ``key_file.json``, read in one place.

TorchServe 0.12 (token authorization on) writes ``{"management": {"key", "expiration time"},
"inference": {...}, "API": {"key"}}`` into the directory it was started from, on every start
and whenever a key is renewed (keys expire), so callers read it again rather than keep a key:
:func:`read_keys` for one read, :class:`InferenceKey` for a client that re-reads the file
when it changes and after an answer that refuses the key. No key file means token
authorization is off.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tsclient.config import ROOT
from tsclient.errors import KeyFileError

log = logging.getLogger(__name__)

DEFAULT_KEY_FILE = ROOT / "key_file.json"
KINDS = ("inference", "management")  # the keys that expire (the API key does not)


@dataclass(frozen=True)
class Keys:
    """The keys of one key_file.json (None: not in the file) and when they expire."""

    inference: str | None = None
    management: str | None = None
    api: str | None = None
    inference_expires: datetime | None = None
    management_expires: datetime | None = None

    def expires(self, kind: str) -> datetime | None:
        return getattr(self, f"{kind}_expires")

    def headers(self, kind: str = "inference") -> dict[str, str]:
        return auth_headers(getattr(self, kind))


def parse_instant(text: str) -> datetime | None:
    """Java's ``Instant.toString()`` (``2026-01-01T00:00:00.123456789Z``) as an aware datetime."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text.strip())
    if not match:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}+00:00")


def key_file_path(explicit: Path | str | None = None) -> Path:
    """``explicit``, else ``TS_KEY_FILE``, else key_file.json in the repository root."""
    return Path(explicit or os.environ.get("TS_KEY_FILE") or DEFAULT_KEY_FILE)


def read_keys(key_file: Path | str | None = None, *, strict: bool = False) -> Keys:
    """The keys of TorchServe's key file (:func:`key_file_path`); empty Keys when the file does
    not exist. Raises :class:`KeyFileError` when it cannot be read or is not TorchServe's
    format (``strict``: also when it has no inference key)."""
    path = key_file_path(key_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Keys()
    except OSError as exc:
        raise KeyFileError(f"cannot read TorchServe key file {path}: {exc}") from exc
    try:
        data = json.loads(text)
        parts = {
            kind: _section(data, name)
            for kind, name in (
                ("inference", "inference"),
                ("management", "management"),
                ("api", "API"),
            )
        }
        keys = Keys(
            **{kind: _key(part) for kind, part in parts.items()},
            inference_expires=_expiry(parts["inference"]),
            management_expires=_expiry(parts["management"]),
        )
        if strict and not keys.inference:
            raise KeyError("inference")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path}: not a TorchServe key file ({type(exc).__name__})") from exc
    return keys


def _section(data: Any, name: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    part = data.get(name) or {}
    return part if isinstance(part, dict) else {}


def _key(part: dict[str, Any]) -> str | None:
    key = part.get("key")
    return None if key is None else str(key)


def _expiry(part: dict[str, Any]) -> datetime | None:
    return parse_instant(str(part.get("expiration time", "")))


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


class InferenceKey:
    """The ``Authorization: Bearer`` key of a long-lived client: a fixed value, or the
    inference key of a key file, read again when the file changes and on :meth:`reload`
    (after an answer that refused the key)."""

    def __init__(self, value: str = "", key_file: str | Path = ""):
        self._value = value
        self.file = Path(key_file) if key_file else None
        self._mtime: float | None = None
        self._file_value = ""

    def _read_file(self) -> str:
        assert self.file is not None
        try:
            stat = self.file.stat()
            if self._mtime == stat.st_mtime and self._file_value:
                return self._file_value
            self._file_value = str(read_keys(self.file, strict=True).inference)
            self._mtime = stat.st_mtime
        except (OSError, KeyFileError) as exc:
            log.error(
                "cannot read the inference key from TS_KEY_FILE=%s: %s",
                self.file,
                type(exc).__name__,
            )
            self._file_value = ""
        return self._file_value

    def current(self) -> str:
        if self._value:
            return self._value
        if self.file is not None:
            return self._read_file()
        return ""

    def reload(self) -> bool:
        """Re-read the key file; True when that gave a different key worth retrying with."""
        if self._value or self.file is None:
            return False
        old = self._file_value
        self._mtime = None
        return bool(self._read_file()) and self._file_value != old

    def source(self) -> str:
        """Where the key comes from, for a log line (never the key)."""
        return f"TS_KEY_FILE={self.file}" if self.file is not None else "TS_INFERENCE_KEY"

    def headers(self) -> dict[str, str]:
        return auth_headers(self.current())

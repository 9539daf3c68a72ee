#!/usr/bin/env python3
"""Hand TorchServe's inference key to the bot, and renew it before it expires.

TorchServe 0.12 writes ``key_file.json`` (inference, management and token-API keys, mode
0600) into its working directory at start and whenever a key is renewed. The bot runs in
another container as another user and needs only the inference key, so this watcher (started
in the background by docker/entrypoint-torchserve.sh) copies just that key to a file on a
shared tmpfs volume, mode 0640, readable by the TorchServe group the bot container joins.

Keys expire after ``token_expiration_min``; before the inference key does, the watcher asks
TorchServe's token API for a new one (``POST /token?type=inference`` on the management port
with the API key). TorchServe rewrites key_file.json and the next pass exports the new key;
the bot re-reads its key file whenever it changes.

    ts_keys.py watch --key-file run/key_file.json --export /run/torchserve-keys/key.json
    ts_keys.py export --key-file run/key_file.json --export /tmp/key.json   # one pass
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

EXPORT_MODE = 0o640


class KeyFileError(RuntimeError):
    """key_file.json is missing a key or is not TorchServe's format."""


@dataclass(frozen=True)
class Keys:
    inference: str
    inference_expires: datetime | None
    api: str


def parse_instant(text: str) -> datetime | None:
    """Java's ``Instant.toString()`` (``2026-01-01T00:00:00.123456789Z``) as an aware datetime."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text.strip())
    if not match:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}+00:00")


def read_keys(path: Path) -> Keys:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        inference = data["inference"]
        key = str(inference["key"])
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a TorchServe key file ({type(exc).__name__})") from exc
    api = str((data.get("API") or {}).get("key") or "")
    return Keys(key, parse_instant(str(inference.get("expiration time", ""))), api)


def export(keys: Keys, target: Path) -> None:
    """Write ``{"inference": {"key": ...}}`` atomically, so a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {"inference": {"key": keys.inference}}
    if keys.inference_expires is not None:
        body["inference"]["expiration time"] = keys.inference_expires.isoformat()
    fd, tmp = tempfile.mkstemp(prefix=".key-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
        os.chmod(tmp, EXPORT_MODE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def renew_inference_key(management_url: str, api_key: str, timeout: float = 10.0) -> None:
    """Ask TorchServe for a new inference key; it rewrites key_file.json itself."""
    request = urllib.request.Request(f"{management_url.rstrip('/')}/token?type=inference",
                                     method="POST", data=b"",
                                     headers={"Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def needs_renewal(keys: Keys, before_s: float, now: datetime | None = None) -> bool:
    if keys.inference_expires is None or before_s <= 0:
        return False
    now = now or datetime.now(UTC)
    return (keys.inference_expires - now).total_seconds() <= before_s


class Watcher:
    """One ``step()`` per poll: export when key_file.json changed, renew when due."""

    def __init__(self, key_file: Path, target: Path, management_url: str,
                 renew_before_s: float, retry_s: float = 60.0):
        self.key_file = key_file
        self.target = target
        self.management_url = management_url
        self.renew_before_s = renew_before_s
        self.retry_s = retry_s
        self._exported: tuple[float, int] | None = None
        self._next_renewal_try = 0.0

    def step(self, now: datetime | None = None) -> str:
        """Returns what happened: waiting, exported, unchanged, renewed or renew-failed."""
        try:
            stat = self.key_file.stat()
        except FileNotFoundError:
            return "waiting"
        signature = (stat.st_mtime, stat.st_size)
        keys = read_keys(self.key_file)
        result = "unchanged"
        if signature != self._exported:
            export(keys, self.target)
            self._exported = signature
            result = "exported"
        if needs_renewal(keys, self.renew_before_s, now) and keys.api \
                and time.monotonic() >= self._next_renewal_try:
            # at most one attempt per retry_s, whether it works or not
            self._next_renewal_try = time.monotonic() + self.retry_s
            try:
                renew_inference_key(self.management_url, keys.api)
                result = "renewed"
            except (urllib.error.URLError, OSError) as exc:
                log(f"renewing the inference key failed, retrying in {self.retry_s:.0f} s: "
                    f"{type(exc).__name__}")
                result = "renew-failed"
        return result


def log(message: str) -> None:
    print(f"ts_keys: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["watch", "export"])
    p.add_argument("--key-file", type=Path, default=Path("key_file.json"))
    p.add_argument("--export", type=Path, required=True, dest="target")
    p.add_argument("--management-url", default="http://127.0.0.1:8081")
    p.add_argument("--renew-before", type=float, default=3600.0,
                   help="renew the inference key this many seconds before it expires (0: never)")
    p.add_argument("--interval", type=float, default=1.0)
    args = p.parse_args(argv)
    watcher = Watcher(args.key_file, args.target, args.management_url, args.renew_before)
    if args.command == "export":
        try:
            return 0 if watcher.step() != "waiting" else 1
        except KeyFileError as exc:
            log(str(exc))
            return 1
    while True:
        try:
            if watcher.step() == "exported":
                log(f"inference key exported to {args.target}")
        except KeyFileError as exc:  # caught mid-write; the next pass reads it whole
            log(str(exc))
        except OSError as exc:
            # e.g. the export volume is missing or read-only: keep trying rather than die
            # silently in the background and leave the bot with a stale key
            log(f"cannot export the inference key to {args.target}: "
                f"{exc.strerror or type(exc).__name__}")
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())

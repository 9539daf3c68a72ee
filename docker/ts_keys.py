#!/usr/bin/env python3
"""Renew TorchServe's keys before they expire, and hand the inference key to the bot.

TorchServe 0.12 writes ``key_file.json`` (inference, management and token-API keys, mode
0600) into its working directory at start and whenever a key is renewed. Keys expire after
``token_expiration_min`` (a week in our configs) and an expired key is answered with HTTP 400
``InvalidKeyException``, so a server that runs longer than that stops serving unless someone
renews them. Before the inference or management key expires, the watcher asks TorchServe's
token API for a new one (``/token?type=inference|management`` on the management port with the
API key, which does not expire); TorchServe rewrites key_file.json, and every client that
re-reads it (the bot, our scripts) goes on. It runs beside every TorchServe we start:

* in the container, started by docker/entrypoint-torchserve.sh, also with ``--export``: the
  bot runs in another container as another user and needs only the inference key, so the
  watcher copies just that key to a file on a shared tmpfs volume, mode 0640, readable by the
  TorchServe group the bot container joins;
* on a host, started by scripts/serve.sh with ``--while-pid`` (it exits with TorchServe) and
  ``--ts-config`` (the management address, and ``token_expiration_min`` to renew in time when
  keys live less than two hours).

    ts_keys.py watch --key-file run/key_file.json --export /run/torchserve-keys/key.json
    ts_keys.py watch --key-file key_file.json --ts-config logs/run/config.properties --while-pid N
    ts_keys.py export --key-file run/key_file.json --export /tmp/key.json   # one pass

key_file.json is read with :func:`tsclient.keys.read_keys` (:mod:`tsclient` must be importable:
the image puts it on PYTHONPATH, a host has it installed by scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tsclient import TorchServeError, call, client_url, read_properties
from tsclient.keys import KINDS, KeyFileError, Keys, parse_instant, read_keys

__all__ = ["KINDS", "KeyFileError", "Keys", "Watcher", "main", "parse_instant", "read_keys"]

EXPORT_MODE = 0o640


def renew_before_for(renew_before_s: float, lifetime_min: float | None) -> float:
    """How long before expiry to renew: ``renew_before_s``, but at most half a key's lifetime
    (a 1-minute key is renewed 30 s before it expires, not at once and forever)."""
    if lifetime_min is None or lifetime_min <= 0:
        return renew_before_s
    return min(renew_before_s, lifetime_min * 60.0 / 2)


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


def renew_key(management_url: str, api_key: str, kind: str = "inference",
              timeout: float = 10.0) -> None:
    """Ask TorchServe for a new ``kind`` key; it rewrites key_file.json itself."""
    call("POST", f"{management_url.rstrip('/')}/token?type={kind}", api_key, data=b"",
         timeout=timeout)


def renew_inference_key(management_url: str, api_key: str, timeout: float = 10.0) -> None:
    renew_key(management_url, api_key, "inference", timeout)


def needs_renewal(keys: Keys, before_s: float, now: datetime | None = None,
                  kind: str = "inference") -> bool:
    expires = keys.expires(kind)
    if expires is None or before_s <= 0:
        return False
    now = now or datetime.now(UTC)
    return (expires - now).total_seconds() <= before_s


class Watcher:
    """One ``step()`` per poll: export when key_file.json changed (when there is a
    ``target``), renew each key when due."""

    # after a renewal, the next look at that key waits this long: TorchServe may still be
    # rewriting key_file.json, and renewing again would only void the new key
    SETTLE_S = 5.0

    def __init__(self, key_file: Path, target: Path | None, management_url: str,
                 renew_before_s: float, retry_s: float = 60.0):
        self.key_file = key_file
        self.target = target
        self.management_url = management_url
        self.renew_before_s = renew_before_s
        # a failed renewal is tried again after retry_s, or sooner when keys are short-lived
        self.retry_s = min(retry_s, max(1.0, renew_before_s / 4)) if renew_before_s > 0 \
            else retry_s
        self._exported: tuple[float, int] | None = None
        self._next_try = dict.fromkeys(KINDS, 0.0)

    def step(self, now: datetime | None = None) -> str:
        """Returns what happened: waiting, exported, unchanged, renewed or renew-failed."""
        try:
            stat = self.key_file.stat()
        except FileNotFoundError:
            return "waiting"
        signature = (stat.st_mtime, stat.st_size)
        keys = read_keys(self.key_file, strict=True)
        result = "unchanged"
        if signature != self._exported:
            if self.target is not None:
                export(keys, self.target)
                result = "exported"
            self._exported = signature
        for kind in KINDS:
            if not (keys.api and needs_renewal(keys, self.renew_before_s, now, kind)
                    and time.monotonic() >= self._next_try[kind]):
                continue
            try:
                renew_key(self.management_url, keys.api, kind)
                self._next_try[kind] = time.monotonic() + min(self.SETTLE_S, self.retry_s)
                log(f"renewed the {kind} key (it would have expired at {keys.expires(kind)})")
                result = "renewed" if result != "renew-failed" else result
            except TorchServeError as exc:
                self._next_try[kind] = time.monotonic() + self.retry_s
                log(f"renewing the {kind} key failed, retrying in {self.retry_s:.0f} s: "
                    f"{type(exc).__name__}")
                result = "renew-failed"
        return result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def log(message: str) -> None:
    print(f"ts_keys: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["watch", "export"])
    p.add_argument("--key-file", type=Path, default=Path("key_file.json"))
    p.add_argument("--export", type=Path, default=None, dest="target",
                   help="copy the inference key there for the bot (required by export)")
    p.add_argument("--management-url", default=None,
                   help="default: management_address of --ts-config, else 127.0.0.1:8081")
    p.add_argument("--ts-config", type=Path, default=None,
                   help="TorchServe's config.properties: management_address and "
                        "token_expiration_min")
    p.add_argument("--renew-before", type=float, default=3600.0,
                   help="renew a key this many seconds before it expires (0: never); at most "
                        "half of token_expiration_min when --ts-config gives it")
    p.add_argument("--while-pid", type=int, default=None,
                   help="exit once this process (TorchServe) has exited")
    p.add_argument("--interval", type=float, default=1.0)
    args = p.parse_args(argv)
    props = read_properties(args.ts_config) if args.ts_config else {}
    management = client_url(args.management_url or props.get("management_address")
                            or "http://127.0.0.1:8081")
    try:
        lifetime = float(props["token_expiration_min"]) if "token_expiration_min" in props \
            else None
    except ValueError:
        lifetime = None
    renew_before = renew_before_for(args.renew_before, lifetime)
    watcher = Watcher(args.key_file, args.target, management, renew_before)
    if args.command == "export":
        if args.target is None:
            p.error("export needs --export")
        try:
            return 0 if watcher.step() != "waiting" else 1
        except KeyFileError as exc:
            log(str(exc))
            return 1
    log(f"watching {args.key_file}: renewing keys {renew_before:.0f} s before they expire "
        f"through {management}")
    while True:
        if args.while_pid is not None and not pid_alive(args.while_pid):
            log(f"TorchServe (pid {args.while_pid}) has exited: stopping")
            return 0
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

#!/usr/bin/env python3
"""Container health checks (Docker HEALTHCHECK, compose healthcheck), standard library only.

    healthcheck.py torchserve   GET /ping with the inference key when token auth is on
                                (TorchServe 0.12 answers 400 without it); healthy = 200 and
                                status "Healthy"
    healthcheck.py bot          GET /metrics on METRICS_PORT when set, and a TCP connect to
                                WEBHOOK_PORT in webhook mode; nothing to probe in plain
                                polling mode without metrics (the process is PID 1 then)

Exit 0 when healthy, 1 otherwise, with one line saying why (shown by ``docker inspect``).
Neither the key nor the token is ever printed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_TS_URL = "http://127.0.0.1:8080/ping"
DEFAULT_KEY_FILE = "/home/model-server/run/key_file.json"


def inference_key(path: Path) -> str:
    """The inference key, or "" when there is no key file (token auth off)."""
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["inference"]["key"])
    except FileNotFoundError:
        return ""
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"unreadable key file {path} ({type(exc).__name__})") from exc


def check_torchserve(url: str, key_file: Path, timeout: float) -> str:
    key = inference_key(key_file)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"{url}: no answer ({getattr(exc, 'reason', exc)})") from exc
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        status = None
    if status != "Healthy":
        raise RuntimeError(f"{url}: status {status!r}")
    return f"torchserve healthy ({url})"


def check_bot(env: dict[str, str], timeout: float) -> str:
    done = []
    metrics_port = int(env.get("METRICS_PORT") or 0)
    if metrics_port:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                response.read(1)
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
        done.append("metrics")
    if env.get("WEBHOOK_URL"):
        port = int(env.get("WEBHOOK_PORT") or 8088)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        except OSError as exc:
            raise RuntimeError(f"webhook port {port}: {exc.strerror or exc}") from exc
        done.append("webhook")
    return "bot healthy (" + (", ".join(done) or "nothing to probe in polling mode") + ")"


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", choices=["torchserve", "bot"])
    p.add_argument("--url", default=env.get("HEALTHCHECK_URL", DEFAULT_TS_URL))
    p.add_argument("--key-file", type=Path,
                   default=Path(env.get("HEALTHCHECK_KEY_FILE", DEFAULT_KEY_FILE)))
    p.add_argument("--timeout", type=float, default=4.0)
    args = p.parse_args(argv)
    try:
        if args.target == "torchserve":
            message = check_torchserve(args.url, args.key_file, args.timeout)
        else:
            message = check_bot(env, args.timeout)
    except (RuntimeError, ValueError) as exc:
        print(f"unhealthy: {exc}")
        return 1
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())

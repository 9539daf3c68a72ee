#!/usr/bin/env python3
"""Container health checks (Docker HEALTHCHECK, compose healthcheck): the standard library and
:mod:`tsclient` (on the images' PYTHONPATH) only.

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
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tsclient import call, read_keys

DEFAULT_TS_URL = "http://127.0.0.1:8080/ping"
DEFAULT_KEY_FILE = "/home/model-server/run/key_file.json"


def check_torchserve(url: str, key_file: Path, timeout: float) -> str:
    """GET /ping with the inference key (none without a key file: token auth off); raises
    TorchServeError (a RuntimeError) when unhealthy, the key file unreadable included."""
    _, body = call("GET", url, read_keys(key_file).inference, timeout=timeout)
    status = body.get("status") if isinstance(body, dict) else None
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

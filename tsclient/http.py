"""Synchronous calls to TorchServe (standard library only): one request, health, readiness.

:func:`call` answers (status, JSON body or raw bytes) and raises :class:`TorchServeError` on an
error answer or no answer (:class:`InvalidKeyError` when the key is refused);
:func:`call_with_key` reads the key from the key file, and reads it again once when refused.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tsclient.config import Endpoints
from tsclient.errors import DOWN, InvalidKeyError, TorchServeError, answer_error, key_rejected
from tsclient.keys import auth_headers, read_keys


def call(
    method: str,
    url: str,
    key: str | None = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """One HTTP call; returns (status, JSON body or raw bytes). Raises TorchServeError on
    4xx/5xx answers (with the server's message) and when nothing answers."""
    request = urllib.request.Request(
        url, data=data, method=method, headers={**auth_headers(key), **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as exc:
        body = _decode(exc.read())
        if key_rejected(exc.code, body):
            raise InvalidKeyError(
                f"{method} {url}: HTTP {exc.code}: TorchServe refused the key (wrong or "
                f"expired; keys expire after token_expiration_min). Read it again from the key "
                f"file: TorchServe writes new keys on every start and when they are renewed "
                f"(scripts/serve.sh start runs the renewal, logs/ts_keys.log)",
                exc.code,
                body,
            ) from exc
        mapped = answer_error(exc.code, body)
        message = body.get("message") if isinstance(body, dict) else None
        raise TorchServeError(
            f"{method} {url}: HTTP {exc.code}: {message or body!r}",
            exc.code,
            body,
            kind=mapped.kind,
            code=mapped.code,
            field=mapped.field,
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TorchServeError(f"{method} {url}: no answer ({reason})", kind=DOWN) from exc


def call_with_key(
    method: str, url: str, kind: str = "inference", key_file: Path | str | None = None, **kw: Any
) -> tuple[int, Any]:
    """:func:`call` with the ``kind`` key read from the key file; a refused key is read again
    and the call sent once more (a key renewed between the read and the call)."""
    try:
        return call(method, url, getattr(read_keys(key_file), kind), **kw)
    except InvalidKeyError:
        return call(method, url, getattr(read_keys(key_file), kind), **kw)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def health(endpoints: Endpoints, model: str, key_file: Path | None = None) -> dict[str, Any]:
    """Ping plus the default version's worker states; raises TorchServeError if unreachable."""
    keys = read_keys(key_file)
    _, ping_body = call("GET", f"{endpoints.inference}/ping", keys.inference, timeout=5)
    status = ping_body.get("status") if isinstance(ping_body, dict) else str(ping_body)
    _, described = call("GET", f"{endpoints.management}/models/{model}", keys.management, timeout=5)
    entry = described[0] if isinstance(described, list) and described else {}
    workers = [w.get("status") for w in entry.get("workers", [])]
    return {
        "ping": status,
        "model": model,
        "version": entry.get("modelVersion"),
        "workers": workers,
        "ready": status == "Healthy" and "READY" in workers,
    }


def wait_ready(
    endpoints: Endpoints,
    model: str,
    timeout: float,
    key_file: Path | None = None,
    is_alive: Callable[[], bool] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Poll until ping says Healthy and the model has ``workers`` READY workers (or raise)."""
    deadline = time.monotonic() + timeout
    last: Any = "no answer yet"
    while time.monotonic() < deadline:
        if is_alive is not None and not is_alive():
            raise TorchServeError("TorchServe exited while starting")
        try:
            state = health(endpoints, model, key_file)
            if state["ready"] and state["workers"].count("READY") >= workers:
                return state
            last = state
        except TorchServeError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TorchServeError(f"TorchServe not ready after {timeout:.0f} s; last state: {last}")

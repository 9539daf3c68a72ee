"""Where our TorchServe listens, which keys it wants, and how to call it: the one client of
the scripts in scripts/ and of the tests.

* URLs come from ``config.properties`` (``inference_address`` ...), or from the environment
  (``TS_INFERENCE_URL``, ``TS_MANAGEMENT_URL``, ``TS_METRICS_URL``).
* Keys come from the ``key_file.json`` TorchServe 0.12 writes into the directory it was
  started from (token authorization is on): the repository root for ``scripts/serve.sh``, or
  ``TS_KEY_FILE`` / ``--key-file``. The file is re-read on every call because TorchServe writes
  new keys on every start. No key file means token authorization is off.

Command line (used by serve.sh):

    python -m scripts.ts_client wait [--model msgnet] [--timeout 180]   # healthy + READY worker
    python -m scripts.ts_client status                                  # one-shot health report
    python -m scripts.ts_client keys                                    # where the keys are
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config.properties"
DEFAULT_KEY_FILE = ROOT / "key_file.json"
DEFAULTS = {"inference_address": "http://127.0.0.1:8080",
            "management_address": "http://127.0.0.1:8081",
            "metrics_address": "http://127.0.0.1:8082"}


class TorchServeError(RuntimeError):
    """An HTTP error answer (or no answer) from TorchServe."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class InvalidKeyError(TorchServeError):
    """TorchServe refused the key: wrong, or expired (0.12 answers 400 InvalidKeyException)."""


def key_rejected(status: int | None, body: Any) -> bool:
    """Whether an answer refuses the key: 400 ``InvalidKeyException`` (TorchServe 0.12, for
    a wrong or expired key), or 401/403 (a proxy in front of it)."""
    if status in (401, 403):
        return True
    return status == 400 and isinstance(body, dict) and body.get("type") == "InvalidKeyException"


def read_properties(path: Path) -> dict[str, str]:
    """A minimal Java .properties reader (key=value, # comments, backslash escapes)."""
    props: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip().replace("\\\\", "\\")
    return props


def _client_url(address: str) -> str:
    """A URL a local client can call (a server bound to 0.0.0.0 is reached on 127.0.0.1)."""
    return address.rstrip("/").replace("://0.0.0.0", "://127.0.0.1")


@dataclass(frozen=True)
class Endpoints:
    inference: str
    management: str
    metrics: str

    @classmethod
    def from_config(cls, config: Path | None = None) -> Endpoints:
        path = Path(config or os.environ.get("TS_CONFIG") or DEFAULT_CONFIG)
        props = {**DEFAULTS, **(read_properties(path) if path.is_file() else {})}
        return cls(
            inference=_client_url(os.environ.get("TS_INFERENCE_URL")
                                  or props["inference_address"]),
            management=_client_url(os.environ.get("TS_MANAGEMENT_URL")
                                   or props["management_address"]),
            metrics=_client_url(os.environ.get("TS_METRICS_URL") or props["metrics_address"]),
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_private_config(path: Path, store: Path, **overrides: str) -> Endpoints:
    """Write the repository's config.properties for a private TorchServe (tests, benchmark,
    demo): every port it opens - HTTP APIs, gRPC (which 0.12 cannot turn off) and the worker
    sockets - moved to a free one on 127.0.0.1, and the model store (and the archives it may
    register) replaced, so it never collides with another TorchServe on this machine.
    ``overrides`` replace or add further keys. Returns where it will listen."""
    ports = {name: free_port() for name in ("inference", "management", "metrics")}
    endpoints = Endpoints(*(f"http://127.0.0.1:{ports[n]}"
                            for n in ("inference", "management", "metrics")))
    values = {"inference_address": endpoints.inference,
              "management_address": endpoints.management,
              "metrics_address": endpoints.metrics,
              "model_store": str(store),
              "allowed_urls": f"file://{store}/[^/]+\\\\.mar",
              "initial_worker_port": str(free_port()),
              "grpc_inference_port": str(free_port()),
              "grpc_management_port": str(free_port()),
              **overrides}
    rewrite_properties(DEFAULT_CONFIG, path, values)
    return endpoints


def rewrite_properties(source: Path, path: Path, values: dict[str, str]) -> None:
    """Write ``source`` to ``path`` with the keys of ``values`` replaced (or appended)."""
    lines, seen = [], set()
    for line in source.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in values:
            line = f"{key}={values[key]}"
            seen.add(key)
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_anchored_config(source: Path, path: Path, store: Path) -> None:
    """Copy ``source`` with ``model_store`` made absolute and ``allowed_urls`` anchored to it.

    The repository's config says ``file://.*/model_store/...`` because it cannot know where the
    checkout lives, which admits an archive from *any* folder named model_store; the running
    TorchServe gets this copy instead. ``\\Q...\\E`` quotes the path for Java's regex (a path
    with dots or brackets stays literal); backslashes are doubled for the .properties file.
    """
    store = store.resolve()
    if "\\E" in str(store) or "," in str(store):  # cannot be quoted / would split the list
        raise ValueError(f"model store path cannot be anchored: {store}")
    values = {"model_store": str(store),
              "allowed_urls": f"file://\\\\Q{store}\\\\E/[^/]+\\\\.mar"}
    rewrite_properties(source, path, values)


@dataclass(frozen=True)
class Keys:
    inference: str | None = None
    management: str | None = None
    api: str | None = None


def key_file_path(explicit: Path | str | None = None) -> Path:
    return Path(explicit or os.environ.get("TS_KEY_FILE") or DEFAULT_KEY_FILE)


def read_keys(key_file: Path | str | None = None) -> Keys:
    """Keys from TorchServe's key_file.json; empty Keys when the file does not exist."""
    path = key_file_path(key_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Keys()
    except (OSError, ValueError) as exc:
        raise TorchServeError(f"cannot read TorchServe key file {path}: {exc}") from exc
    return Keys(inference=(data.get("inference") or {}).get("key"),
                management=(data.get("management") or {}).get("key"),
                api=(data.get("API") or {}).get("key"))


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def call(method: str, url: str, key: str | None = None, data: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, Any]:
    """One HTTP call; returns (status, JSON body or raw bytes). Raises TorchServeError on
    4xx/5xx answers (with the server's message) and when nothing answers."""
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**auth_headers(key), **(headers or {})})
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
                exc.code, body) from exc
        message = body.get("message") if isinstance(body, dict) else None
        raise TorchServeError(f"{method} {url}: HTTP {exc.code}: {message or body!r}",
                              exc.code, body) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TorchServeError(f"{method} {url}: no answer ({reason})") from exc


def call_with_key(method: str, url: str, kind: str = "inference",
                  key_file: Path | str | None = None, **kw: Any) -> tuple[int, Any]:
    """:func:`call` with the ``kind`` key read from the key file; a refused key is read again
    and the call sent once more (a key renewed between the read and the call)."""
    try:
        return call(method, url, getattr(read_keys(key_file), kind), **kw)
    except InvalidKeyError:
        return call(method, url, getattr(read_keys(key_file), kind), **kw)


def multipart(fields: list[tuple[str, bytes, str | None]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type from (name, value, filename) triples;
    a filename makes the part a file upload. Lets stdlib callers post forms like curl -F."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value, filename in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def health(endpoints: Endpoints, model: str, key_file: Path | None = None) -> dict[str, Any]:
    """Ping plus the default version's worker states; raises TorchServeError if unreachable."""
    keys = read_keys(key_file)
    _, ping = call("GET", f"{endpoints.inference}/ping", keys.inference, timeout=5)
    status = ping.get("status") if isinstance(ping, dict) else str(ping)
    _, described = call("GET", f"{endpoints.management}/models/{model}", keys.management,
                        timeout=5)
    entry = described[0] if isinstance(described, list) and described else {}
    workers = [w.get("status") for w in entry.get("workers", [])]
    return {"ping": status, "model": model, "version": entry.get("modelVersion"),
            "workers": workers, "ready": status == "Healthy" and "READY" in workers}


def wait_ready(endpoints: Endpoints, model: str, timeout: float, key_file: Path | None = None,
               is_alive: Callable[[], bool] | None = None, workers: int = 1) -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="TorchServe health and keys for our scripts")
    p.add_argument("command", choices=["wait", "status", "keys", "anchor"])
    p.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    p.add_argument("--output", type=Path, default=None, help="anchor: the config to write")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--key-file", type=Path, default=None)
    p.add_argument("--model", default="msgnet")
    p.add_argument("--timeout", type=float, default=180.0)
    args = p.parse_args(argv)
    if args.command == "anchor":
        write_anchored_config(args.config or DEFAULT_CONFIG, args.output, args.model_store)
        return 0
    endpoints = Endpoints.from_config(args.config)
    if args.command == "keys":
        path = key_file_path(args.key_file)
        print(f"key file: {path} ({'present' if path.is_file() else 'absent'})")
        return 0
    try:
        if args.command == "wait":
            started = time.monotonic()
            state = wait_ready(endpoints, args.model, args.timeout, args.key_file)
            print(f"TorchServe healthy, model {args.model} version {state['version']} ready "
                  f"({time.monotonic() - started:.1f} s)")
        else:
            state = health(endpoints, args.model, args.key_file)
            print(json.dumps({"inference": endpoints.inference, **state}))
            return 0 if state["ready"] else 1
    except TorchServeError as exc:
        print(f"ts_client: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

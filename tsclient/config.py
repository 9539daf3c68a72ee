"""Where a TorchServe listens: ``config.properties`` (ours, or a private copy on free ports).

* URLs come from ``config.properties`` (``inference_address`` ...), or from the environment
  (``TS_INFERENCE_URL``, ``TS_MANAGEMENT_URL``, ``TS_METRICS_URL``).
* :func:`write_private_config` moves every port of the repository's config to a free one, for
  a private TorchServe (tests, benchmarks, demos); :func:`write_anchored_config` anchors
  ``allowed_urls`` to the model store of the running server (``scripts/serve.sh``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config.properties"
DEFAULTS = {
    "inference_address": "http://127.0.0.1:8080",
    "management_address": "http://127.0.0.1:8081",
    "metrics_address": "http://127.0.0.1:8082",
}


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


def client_url(address: str) -> str:
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
            inference=client_url(os.environ.get("TS_INFERENCE_URL") or props["inference_address"]),
            management=client_url(
                os.environ.get("TS_MANAGEMENT_URL") or props["management_address"]
            ),
            metrics=client_url(os.environ.get("TS_METRICS_URL") or props["metrics_address"]),
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
    endpoints = Endpoints(
        *(f"http://127.0.0.1:{ports[n]}" for n in ("inference", "management", "metrics"))
    )
    values = {
        "inference_address": endpoints.inference,
        "management_address": endpoints.management,
        "metrics_address": endpoints.metrics,
        "model_store": str(store),
        "allowed_urls": f"file://{store}/[^/]+\\\\.mar",
        "initial_worker_port": str(free_port()),
        "grpc_inference_port": str(free_port()),
        "grpc_management_port": str(free_port()),
        **overrides,
    }
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
    values = {"model_store": str(store), "allowed_urls": f"file://\\\\Q{store}\\\\E/[^/]+\\\\.mar"}
    rewrite_properties(source, path, values)

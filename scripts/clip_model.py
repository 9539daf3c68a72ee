"""Register the archive a second time as ``msgnet_clip``: a worker pool of its own for clips.

A clip is one request but hundreds of forward passes (a 10 s clip at 15 fps, 480 px: about
1.5 min on 2 cores). On the photo model it would hold that model's worker for the whole time,
and every photo queued behind it would wait. Registered under its own name the same handler
gets its own worker process: photos keep their queue and worker, and the two share only the
CPU cores (docs/animation.md measures the photo latency with a clip on each). The clip model
has batch size 1 and a long response timeout (a clip is answered when all its frames are).

    python -m scripts.clip_model register [--config config.properties] [--mar msgnet.mar]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.ts_client import Endpoints, TorchServeError, call, read_keys

CLIP_MODEL = "msgnet_clip"
CLIP_RESPONSE_TIMEOUT_S = 600  # the bot's TS_CLIP_TIMEOUT (660 s) waits longer than this


def register(endpoints: Endpoints, key_file: Path | None = None, mar: str = "msgnet.mar",
             name: str = CLIP_MODEL, timeout_s: int = CLIP_RESPONSE_TIMEOUT_S) -> str:
    """Register ``mar`` (in the model store) as ``name`` with one worker; idempotent."""
    keys = read_keys(key_file)
    try:
        call("GET", f"{endpoints.management}/models/{name}", keys.management, timeout=10)
        return f"{name} is already registered"
    except TorchServeError as exc:
        if exc.args and "HTTP 404" not in str(exc):
            raise
    query = (f"url={mar}&model_name={name}&initial_workers=1&batch_size=1"
             f"&response_timeout={timeout_s}&synchronous=true")
    call("POST", f"{endpoints.management}/models?{query}", keys.management, timeout=300)
    return f"registered {mar} as {name} (1 worker, batch 1, response timeout {timeout_s} s)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["register"])
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--key-file", type=Path, default=None)
    p.add_argument("--mar", default="msgnet.mar")
    p.add_argument("--name", default=CLIP_MODEL)
    args = p.parse_args(argv)
    print(register(Endpoints.from_config(args.config), args.key_file, args.mar, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

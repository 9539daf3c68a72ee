"""Register the archive a second time as ``msgnet_clip``: a worker pool of its own for clips.

A clip is one request but hundreds of forward passes (a 10 s clip at 15 fps, 480 px: about
1.5 min on 2 cores). On the photo model it would hold that model's worker for the whole time,
and every photo queued behind it would wait. Registered under its own name the same handler
gets its own worker process: photos keep their queue and worker, and the two share only the
CPU cores (docs/animation.md measures the photo latency with a clip on each). The clip model
has batch size 1 and a long response timeout (a clip is answered when all its frames are).

It is its own archive, ``msgnet_clip.mar``, because TorchServe reads the queue and timeout
settings from the archive's model-config.yaml: the photo model drops any answer later than
``clientTimeoutInMills`` (30 s), which a clip always is. The clip archive's config is the photo
one with :data:`CLIP_OVERRIDES`.

    python -m scripts.clip_model build [--weights W] [--version V] [--output-dir model_store]
    python -m scripts.clip_model register [--config config.properties]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from tsclient import ROOT, Endpoints, TorchServeError, call, read_keys

CLIP_MODEL = "msgnet_clip"
# one clip at a time, answered when all its frames are: a 10 s clip at 15 fps and 480 px
# takes about 1.5 min on 2 shared cores, 300 frames twice that
CLIP_RESPONSE_TIMEOUT_S = 600
# jobQueueSize 2: clips wait behind the one running (each bot replica sends one at a time,
# MAX_CONCURRENT_CLIPS; several replicas and REST clients fill the queue); each holds up to
# max_request_size of JVM heap while it waits
CLIP_QUEUE_SIZE = 2
# clientTimeoutInMills is a deadline from a request's arrival to its answer (TorchServe 0.12
# drops any later answer, and never answers): the last clip in the queue waits for the one
# running and the one ahead of it, then runs, so the deadline covers (queue + 1) full
# responseTimeouts. Then, as for photos, responseTimeout < deadline <= the bot's
# TS_CLIP_TIMEOUT (1860 s) <= CLIP_JOB_TIMEOUT (1920 s); tests/test_serving_config.py checks it
CLIP_DEADLINE_S = (CLIP_QUEUE_SIZE + 1) * CLIP_RESPONSE_TIMEOUT_S
PHOTO_CONFIG = ROOT / "handler" / "model-config.yaml"
CLIP_OVERRIDES = {"batchSize": 1, "maxBatchDelay": 0, "minWorkers": 1, "maxWorkers": 1,
                  "jobQueueSize": CLIP_QUEUE_SIZE, "responseTimeout": CLIP_RESPONSE_TIMEOUT_S,
                  "clientTimeoutInMills": CLIP_DEADLINE_S * 1000}
CLIP_THREADS = 1


def write_derived_config(dest: Path, overrides: dict, handler: dict, script: str,
                         source: Path = PHOTO_CONFIG) -> Path:
    """The photo config with ``overrides`` and ``handler`` settings on top; rewritten only
    when it changes, so the archive is not rebuilt for nothing."""
    config = yaml.safe_load(source.read_text()) or {}
    config.update(overrides)
    config["handler"] = {**(config.get("handler") or {}), **handler}
    text = (f"# derived from handler/model-config.yaml by {script}: do not edit\n"
            + yaml.safe_dump(config, sort_keys=False))
    if not dest.is_file() or dest.read_text() != text:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    return dest


def build_archive(name: str, config: Path, output_dir: Path, extra: list[str]) -> Path:
    """``NAME.mar`` in ``output_dir`` with ``config`` (only when stale), via scripts.build_mar."""
    cmd = [sys.executable, "-m", "scripts.build_mar", "--archive-name", name,
           "--model-name", name, "--model-config", str(config), "--output-dir",
           str(output_dir), "--if-stale", *extra]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return output_dir / f"{name}.mar"


def write_clip_config(dest: Path, source: Path = PHOTO_CONFIG) -> Path:
    """The photo config with :data:`CLIP_OVERRIDES` and one torch thread: beside the photo
    worker (and anything else) two threads spin against each other; measured in process on
    this machine, 480 px: 0.47 s a frame on one thread, 0.99 s on two (docs/animation.md)."""
    return write_derived_config(dest, CLIP_OVERRIDES, {"threads": CLIP_THREADS},
                                "scripts/clip_model.py", source)


def build(output_dir: Path, extra: list[str], source: Path = PHOTO_CONFIG) -> Path:
    """``msgnet_clip.mar`` in ``output_dir`` (only when stale), through scripts.build_mar."""
    config = write_clip_config(output_dir / f"{CLIP_MODEL}-config.yaml", source)
    return build_archive(CLIP_MODEL, config, output_dir, extra)


def register(endpoints: Endpoints, key_file: Path | None = None, mar: str = f"{CLIP_MODEL}.mar",
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
    p.add_argument("command", choices=["build", "register"])
    p.add_argument("--config", type=Path, default=None, help="register: config.properties")
    p.add_argument("--key-file", type=Path, default=None)
    p.add_argument("--mar", default=f"{CLIP_MODEL}.mar", help="register: archive in the store")
    p.add_argument("--name", default=CLIP_MODEL)
    p.add_argument("--output-dir", type=Path, default=ROOT / "model_store", help="build")
    p.add_argument("--weights", default=None, help="build: as scripts.build_mar")
    p.add_argument("--version", default=None, help="build: as scripts.build_mar")
    args = p.parse_args(argv)
    if args.command == "build":
        extra = [flag for name in ("weights", "version") if getattr(args, name)
                 for flag in (f"--{name}", getattr(args, name))]
        print(build(args.output_dir, extra))
        return 0
    print(register(Endpoints.from_config(args.config), args.key_file, args.mar, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line of :mod:`tsclient` (``python -m tsclient``, used by scripts/serve.sh):

python -m tsclient wait [--model msgnet] [--timeout 180]   # healthy + READY worker
python -m tsclient status                                  # one-shot health report
python -m tsclient keys                                    # where the keys are
python -m tsclient anchor --output F [--model-store D]     # config with anchored URLs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tsclient.config import DEFAULT_CONFIG, ROOT, Endpoints, write_anchored_config
from tsclient.errors import TorchServeError
from tsclient.http import health, wait_ready
from tsclient.keys import key_file_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tsclient", description="TorchServe health and keys for our scripts"
    )
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
            print(
                f"TorchServe healthy, model {args.model} version {state['version']} ready "
                f"({time.monotonic() - started:.1f} s)"
            )
        else:
            state = health(endpoints, args.model, args.key_file)
            print(json.dumps({"inference": endpoints.inference, **state}))
            return 0 if state["ready"] else 1
    except TorchServeError as exc:
        print(f"tsclient: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

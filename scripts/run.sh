#!/usr/bin/env bash
# The README's first command: set up .venv, build model_store/msgnet.mar if it is missing or
# older than its inputs, start TorchServe in the background, wait until it is healthy and
# print how to call it.
#
#   scripts/run.sh                           # with weights/msgnet-21styles.pt (our weights)
#   scripts/run.sh --weights 21styles.model  # until ours exist: any MSG-Net weights file
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/serve.sh start "$@"

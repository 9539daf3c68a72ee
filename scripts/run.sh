#!/usr/bin/env bash
# The README's first command: set up .venv, build model_store/msgnet.mar if it is missing or
# older than its inputs, start TorchServe in the background, wait until it is healthy, then
# start the Telegram bot when a token is configured (and say how to configure one when not).
#
#   scripts/run.sh                           # our weights, weights/msgnet-21styles.pt
#   scripts/run.sh --weights weights/21styles.model  # any MSG-Net weights file (the authors')
#   scripts/run.sh stop                      # stop the bot and TorchServe
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = stop ]; then
  scripts/bot.sh stop
  scripts/serve.sh stop
  exit 0
fi
scripts/serve.sh check-java >/dev/null  # no Java 17+: say so now, before any install
scripts/setup.sh model,serve,bot  # serving only: no dev tools (scripts/test.sh adds them)
scripts/serve.sh start "$@"
scripts/bot.sh start

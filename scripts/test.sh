#!/usr/bin/env bash
# The whole test suite: sets up .venv if needed (every extra, the dev tools included), then
# runs ruff and pytest (~11-15 min on 2 cores; `scripts/test.sh -m "not integration"` skips the
# tests that start a real TorchServe or bot).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh model,serve,bot,dev
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"

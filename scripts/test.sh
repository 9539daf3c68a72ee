#!/usr/bin/env bash
# The whole test suite: sets up .venv if needed, then runs ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"

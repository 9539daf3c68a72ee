#!/usr/bin/env bash
# Create or update .venv with the extras of pyproject.toml that a task needs.
#
#   scripts/setup.sh                      # model,serve,bot,dev: everything
#   scripts/setup.sh model,serve,bot      # what scripts/run.sh needs to serve (no dev tools)
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 scripts/setup.sh   # a CUDA torch
#
# Safe to re-run: it installs only when pyproject.toml or requirements/torch-cpu.txt changed
# since the last successful run, or when an extra is asked for that no run installed yet (one
# stamp per extras set, and a stamp covers every subset of its extras, so run.sh after
# test.sh installs nothing).
#
# torch comes first and from the CPU wheel index, as PyTorch documents it
# (requirements/torch-cpu.txt): a plain `pip install torch==X` from PyPI gets the CUDA build
# on Linux, several GB of nvidia-* wheels. A +cpu wheel that the pip configuration already
# offers (a local wheel folder, `pip config list`) is used first, without contacting the
# PyTorch index, so an offline machine with such a wheel still installs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${1:-model,serve,bot,dev}
TORCH_REQ=requirements/torch-cpu.txt
case $EXTRAS in
  *[!a-z,]*|'') echo "setup.sh: extras are a comma-separated list, e.g. model,serve,bot" >&2
                exit 2 ;;
esac

sorted_extras() {  # "serve,model" -> "model,serve": one stamp name per set
  tr ',' '\n' <<<"$1" | sed '/^$/d' | sort -u | paste -sd, -
}

covered() {  # true when a stamp of this configuration lists every extra in $1
  local want=$1 stamp have extra ok
  for stamp in .venv/.installed-"$key"-*; do
    [ -f "$stamp" ] || continue
    have=,${stamp#.venv/.installed-"$key"-},
    ok=1
    for extra in ${want//,/ }; do
      case $have in *,"$extra",*) ;; *) ok=0 ;; esac
    done
    [ $ok = 1 ] && return 0
  done
  return 1
}

install_torch() {  # torch at the version of $TORCH_REQ, never PyPI's CUDA build by accident
  local want have
  want=$(sed -n 's/^torch==//p' "$TORCH_REQ")
  have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))' \
         2>/dev/null || true)
  if [ "${have%%+*}" = "$want" ]; then
    return 0  # any build of the right version stays (a CUDA one installed on purpose too)
  fi
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "setup.sh: torch $want from $TORCH_INDEX_URL"
    .venv/bin/python -m pip install -q --index-url "$TORCH_INDEX_URL" "torch==$want"
  elif .venv/bin/python -m pip install -q "torch==$want+cpu" >/dev/null 2>&1; then
    # PyPI has no +cpu release, so this only succeeds from a source the pip configuration
    # adds (find-links, an extra index): the offline path
    echo "setup.sh: torch $want+cpu from the pip configuration's own sources"
  else
    echo "setup.sh: torch $want (CPU build) from the PyTorch index ($TORCH_REQ)"
    .venv/bin/python -m pip install -q -r "$TORCH_REQ"
  fi
}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
EXTRAS=$(sorted_extras "$EXTRAS")
key=$(cat pyproject.toml "$TORCH_REQ" | sha256sum | cut -c1-16)
if ! covered "$EXTRAS"; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  case ,$EXTRAS, in *,model,*|*,serve,*) install_torch ;; esac  # the bot needs no torch
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
  # stamps of an older pyproject.toml no longer say anything
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$key-*" -delete
  touch ".venv/.installed-$key-$EXTRAS"
fi

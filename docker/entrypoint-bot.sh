#!/bin/sh
# Entry point of the bot image: `python -m bot` with its configuration from the environment.
#
# With TS_KEY_FILE set (compose: TorchServe's inference key on a shared tmpfs volume), wait up
# to TS_KEY_WAIT_S seconds for the file: TorchServe writes its keys a moment after it starts,
# and a bot that started first would send its first requests without a key (HTTP 400).
# Everything else (token, URLs, limits) is validated by the bot itself, which names the
# variable at fault.
#
# Any other command (e.g. `docker run IMAGE sh`) is executed as given.
set -eu

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ -n "${TS_KEY_FILE:-}" ]; then
  wait_s=${TS_KEY_WAIT_S:-60}
  case $wait_s in
    ''|*[!0-9]*) echo "entrypoint-bot: TS_KEY_WAIT_S must be a whole number of seconds," \
                      "got '$wait_s'" >&2
                 exit 2 ;;
  esac
  waited=0
  while [ ! -r "$TS_KEY_FILE" ]; do
    if [ "$waited" -ge "$wait_s" ]; then
      if [ -e "$TS_KEY_FILE" ]; then
        why="exists but is not readable by uid $(id -u) (groups: $(id -G)); the bot must be in \
TorchServe's group (compose: group_add)"
      else
        why="did not appear; is TorchServe running with token auth and TORCHSERVE_KEY_EXPORT \
pointing at the same volume?"
      fi
      echo "entrypoint-bot: TorchServe key file TS_KEY_FILE=$TS_KEY_FILE $why" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
fi

exec python -m bot "$@"

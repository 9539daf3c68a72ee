#!/usr/bin/env bash
# Start, stop or query the Telegram bot (python -m bot) in the background.
#
#   scripts/bot.sh start     start when a token is configured (BOT_TOKEN / BOT_TOKEN_FILE in the
#                            environment or in .env); otherwise explain how to get one
#   scripts/bot.sh stop      stop it gracefully (SIGTERM: in-flight jobs are drained or cancelled
#                            and their users told)
#   scripts/bot.sh status
#
# The bot talks to the TorchServe of scripts/serve.sh and reads its token-auth key from
# key_file.json in the repository root unless TS_KEY_FILE / TS_INFERENCE_KEY say otherwise.
# The token is never printed; logs go to logs/bot.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PID_FILE=logs/run/bot.pid
export TS_KEY_FILE=${TS_KEY_FILE:-$(pwd)/key_file.json}

bot_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && ps -p "$pid" -o args= 2>/dev/null | grep -q -- "-m bot" && echo "$pid"
}

start() {
  if pid=$(bot_pid); then
    echo "The bot is already running (pid $pid); logs in logs/bot.log."
    return 0
  fi
  local problem
  if ! problem=$("$PY" -c 'import os; from bot.config import load_settings; load_settings(dotenv=os.environ.get("BOT_DOTENV", ".env"))' 2>&1); then
    echo "The bot is not started: ${problem##*: }" | sed 's/^/  /' >&2
    cat >&2 <<'MSG'
  To start it: talk to @BotFather in Telegram, create a bot, and put its token in .env
  (cp .env.example .env; chmod 600 .env; set BOT_TOKEN=...) or export BOT_TOKEN / BOT_TOKEN_FILE,
  then run scripts/run.sh again. Without a token TorchServe still serves the REST API.
MSG
    return 0
  fi
  mkdir -p logs/run
  nohup "$PY" -m bot >>logs/bot.log 2>&1 &
  echo $! >"$PID_FILE"
  sleep 2
  if ! bot_pid >/dev/null; then
    echo "The bot exited at start; last lines of logs/bot.log:" >&2
    tail -n 20 logs/bot.log >&2
    return 1
  fi
  echo "The bot is running (pid $(cat "$PID_FILE")); logs in logs/bot.log. Stop: scripts/bot.sh stop"
}

stop() {
  local pid
  if ! pid=$(bot_pid); then
    echo "The bot is not running."
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 120); do
    ps -p "$pid" >/dev/null 2>&1 || { echo "The bot stopped."; rm -f "$PID_FILE"; return 0; }
    sleep 0.5
  done
  echo "The bot (pid $pid) did not exit within 60 s" >&2
  return 1
}

case ${1:-status} in
  start) start ;;
  stop) stop ;;
  status) if pid=$(bot_pid); then echo "The bot is running (pid $pid)."; else
            echo "The bot is not running."; exit 1; fi ;;
  *) echo "usage: scripts/bot.sh start|stop|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Start, stop or query the local TorchServe that serves model_store/msgnet.mar.
#
#   scripts/serve.sh start [--weights PATH] [--version STR]   build the .mar if needed, start,
#                                                             wait until healthy and READY
#   scripts/serve.sh stop                                     stop and wait for the exit
#   scripts/serve.sh status                                   exit 0 when serving
#   scripts/serve.sh restart [...]
#   scripts/serve.sh check-java                               exit 0 when Java 17+ is there
#
# TorchServe's frontend is Java: without Java 17+ (on PATH, or $JAVA_HOME/bin/java as
# TorchServe looks for it) `start` fails at once, saying so, instead of waiting for a server
# that never comes (TorchServe itself only prints "java not found" to logs/torchserve.out and
# exits 0). When a start fails, the logs that hold the cause are shown, torchserve.out first.
#
# Safe to re-run. TorchServe runs from the repository root, so its key_file.json (token auth)
# lands there and logs go to logs/. Its pid file is kept in logs/run/ instead of the shared
# /tmp, so another TorchServe on this machine (e.g. the test suite's) is never confused with ours.
#
# Token-auth keys expire after token_expiration_min (a week) and TorchServe then answers 400
# InvalidKeyException: `start` also starts docker/ts_keys.py, which renews the keys through
# TorchServe's token API before they expire and exits with TorchServe (log: logs/ts_keys.log).
#
# Learned styles (docs/serving.md, "Learning a style"): every worker reads them from
# $MSGNET_STYLE_STORE (default ~/.local/share/msgnet/styles, the CLI's store too). msgnet_learn,
# the model that learns them, is registered when $MSGNET_VGG (default: weights/
# vgg16_caffe_conv1_1-conv4_3.pt when it exists) and $MSGNET_LEARN_PHOTOS are set up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=.venv/bin/python
TORCHSERVE=.venv/bin/torchserve
CONFIG=${TS_CONFIG:-config.properties}
RUN_DIR=$ROOT/logs/run
PID_FILE=$RUN_DIR/.model_server.pid
KEYS_PID_FILE=$RUN_DIR/ts_keys.pid
MODEL=msgnet
START_TIMEOUT=${TS_START_TIMEOUT:-180}
DEFAULT_VGG=$ROOT/weights/vgg16_caffe_conv1_1-conv4_3.pt
if [ -z "${MSGNET_VGG:-}" ] && [ -f "$DEFAULT_VGG" ]; then
  export MSGNET_VGG=$DEFAULT_VGG  # the workers inherit TorchServe's environment
fi

ts() {  # the torchserve CLI with our private pid-file location and log folder
  TMPDIR=$RUN_DIR LOG_LOCATION=$ROOT/logs METRICS_LOCATION=$ROOT/logs "$TORCHSERVE" "$@"
}

server_pid() {  # prints the pid of our running TorchServe frontend, or fails
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(head -n1 "$PID_FILE")
  [ -n "$pid" ] && ps -p "$pid" -o args= 2>/dev/null | grep -q org.pytorch.serve.ModelServer \
    && echo "$pid"
}

JAVA_MIN=17
java_help() {
  cat >&2 <<MSG
TorchServe needs Java $JAVA_MIN or newer (a JRE is enough). Install it, e.g.
  Debian/Ubuntu:  sudo apt-get install openjdk-17-jre-headless
  Fedora/RHEL:    sudo dnf install java-17-openjdk-headless
  macOS:          brew install openjdk@17
and put its java on PATH, or set JAVA_HOME to its folder (TorchServe runs \$JAVA_HOME/bin/java).
MSG
}

check_java() {  # fails, naming Java and how to get it, unless the java TorchServe runs is 17+
  local java out version major
  if [ -n "${JAVA_HOME:-}" ]; then
    java=$JAVA_HOME/bin/java  # what TorchServe runs when JAVA_HOME is set
    if [ ! -x "$java" ]; then
      echo "serve.sh: Java not found: JAVA_HOME is $JAVA_HOME, which has no bin/java." >&2
      java_help; return 1
    fi
  elif ! java=$(command -v java); then
    echo "serve.sh: Java not found: no java on PATH." >&2
    java_help; return 1
  fi
  # `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' or, up to Java 8,
  # 'java version "1.8.0_392"' (to stderr)
  out=$(timeout 10 "$java" -version 2>&1) || true
  version=$(sed -n 's/.* version "\([^"]*\)".*/\1/p' <<<"$out" | head -n1)
  major=${version%%[.+-]*}
  if [ "$major" = 1 ]; then
    major=$(cut -d. -f2 <<<"$version")
  fi
  if ! [[ $major =~ ^[0-9]+$ ]]; then
    echo "serve.sh: could not read the Java version from '$java -version':" \
         "${out:-no output}" >&2
    java_help; return 1
  fi
  if [ "$major" -lt "$JAVA_MIN" ]; then
    echo "serve.sh: $java is Java $version; TorchServe needs Java $JAVA_MIN or newer." >&2
    java_help; return 1
  fi
}

start_failed() {  # $1: why; $2: torchserve.out's size before this start
  echo "serve.sh: $1" >&2
  echo "--- logs/torchserve.out (this start) ---" >&2
  tail -c +"$(($2 + 1))" logs/torchserve.out 2>/dev/null | tail -n 30 >&2 || true
  local log
  for log in logs/ts_log.log logs/model_log.log; do
    if [ -s "$log" ]; then
      echo "--- $log (last lines) ---" >&2
      tail -n 20 "$log" >&2
    fi
  done
  exit 1
}

keys_pid() {  # prints the pid of our running key renewer, or fails
  [ -f "$KEYS_PID_FILE" ] || return 1
  local pid
  pid=$(head -n1 "$KEYS_PID_FILE")
  [ -n "$pid" ] && ps -p "$pid" -o args= 2>/dev/null | grep -q "docker/ts_keys.py watch" \
    && echo "$pid"
}

start_key_renewal() {  # $1: TorchServe's pid; the renewer exits when that process does
  local auth pid running_config=$RUN_DIR/config.properties  # what TorchServe was started with
  auth=$(sed -n 's/^disable_token_authorization=//p' "$CONFIG" | tail -n1)
  if [ "$auth" = true ]; then
    return 0
  fi
  if pid=$(keys_pid); then
    echo "Key renewal is running (pid $pid, logs/ts_keys.log)."
    return 0
  fi
  nohup "$PY" docker/ts_keys.py watch --key-file "$ROOT/key_file.json" \
    --ts-config "$running_config" --while-pid "$1" \
    --renew-before "${TS_KEY_RENEW_BEFORE_S:-3600}" >>logs/ts_keys.log 2>&1 &
  echo $! >"$KEYS_PID_FILE"
  echo "Key renewal started (pid $!, logs/ts_keys.log): keys are renewed before they expire."
}

usage_hint() {
  local url
  url=$(sed -n 's/^inference_address=//p' "$CONFIG" | tail -n1)
  cat <<MSG
TorchServe is serving model '$MODEL' at ${url:-http://127.0.0.1:8080} (logs in logs/).
Token authorization is on; the keys are in $ROOT/key_file.json (rewritten on every start):
  KEY=\$(.venv/bin/python -c 'import json; print(json.load(open("key_file.json"))["inference"]["key"])')
  curl -H "Authorization: Bearer \$KEY" -F content=@photo.jpg -F style=@style.jpg \\
       ${url:-http://127.0.0.1:8080}/predictions/$MODEL -o out.jpg
  curl -H "Authorization: Bearer \$KEY" -F content=@photo.jpg -F style_id=candy -F size=768 \\
       ${url:-http://127.0.0.1:8080}/predictions/$MODEL -o out.jpg
  curl -H "Authorization: Bearer \$KEY" -H 'Content-Type: application/json' \\
       -d '{"action": "presets"}' ${url:-http://127.0.0.1:8080}/predictions/$MODEL
Stop it with: scripts/run.sh stop (TorchServe and the bot) or scripts/serve.sh stop
MSG
}

start() {
  local build_args=()
  while [ $# -gt 0 ]; do
    case $1 in
      --weights|--version) build_args+=("$1" "$2"); shift 2 ;;
      *) echo "serve.sh start: unknown option $1" >&2; exit 2 ;;
    esac
  done
  if pid=$(server_pid); then
    echo "TorchServe is already running (pid $pid)."
    "$PY" -m tsclient wait --config "$CONFIG" --model "$MODEL" --timeout "$START_TIMEOUT"
    start_key_renewal "$pid"
    usage_hint
    return 0
  fi
  check_java || exit 1
  "$PY" -m scripts.build_mar --if-stale "${build_args[@]}"
  "$PY" -m scripts.clip_model build "${build_args[@]}"  # msgnet_clip.mar: clips' own worker
  "$PY" -m scripts.learn_model build "${build_args[@]}"  # msgnet_learn.mar: fits' own worker
  mkdir -p "$RUN_DIR" logs
  local t0 t1 out_size waiter
  out_size=$(stat -c %s logs/torchserve.out 2>/dev/null || echo 0)
  t0=$(date +%s.%N)
  # TorchServe gets a copy of the config with allowed_urls anchored to this checkout's model
  # store (the repository's file can only say "any folder named model_store")
  "$PY" -m tsclient anchor --config "$CONFIG" --model-store "$ROOT/model_store" \
    --output "$RUN_DIR/config.properties"
  # umask 077 before TorchServe starts: it writes key_file.json (and its logs) owner-only from
  # the first byte, instead of under the default umask until a chmod
  (umask 077
   ts --start --ncs --ts-config "$RUN_DIR/config.properties" --model-store "$ROOT/model_store" \
      --models "$MODEL=$MODEL.mar" >>logs/torchserve.out 2>&1) \
    || start_failed "torchserve --start failed" "$out_size"
  # the frontend may already be gone (Java missing or broken, a port taken): then say so now,
  # and while waiting for READY, stop waiting as soon as it exits
  server_pid >/dev/null || start_failed "TorchServe exited right after its start" "$out_size"
  "$PY" -m tsclient wait --config "$CONFIG" --model "$MODEL" \
    --timeout "$START_TIMEOUT" &
  waiter=$!
  while kill -0 "$waiter" 2>/dev/null; do
    if ! server_pid >/dev/null; then
      kill "$waiter" 2>/dev/null || true
      wait "$waiter" 2>/dev/null || true
      start_failed "TorchServe exited while starting" "$out_size"
    fi
    sleep 1
  done
  wait "$waiter" || start_failed "TorchServe did not become ready in $START_TIMEOUT s" "$out_size"
  t1=$(date +%s.%N)
  echo "cold start to READY: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
  start_key_renewal "$(server_pid)"
  # clips get a worker of their own, so they never queue photos (docs/animation.md)
  "$PY" -m scripts.clip_model register --config "$CONFIG" || \
    echo "warning: could not register the clip model msgnet_clip; clips go to $MODEL" >&2
  # learning a style gets a worker of its own too, when what a fit needs is there; photos and
  # clips never depend on it
  local why
  if why=$("$PY" -m scripts.learn_model check); then
    "$PY" -m scripts.learn_model register --config "$CONFIG" || \
      echo "warning: could not register msgnet_learn; learning through REST is off" >&2
  else
    echo "msgnet_learn is not registered ($why): learning through REST is off, photos and" \
         "clips are served as usual (docs/serving.md, 'Learning a style')"
  fi
  # --ncs above: no TorchServe config snapshots; the versions registered with ts_models.py
  # come back from its state file instead (docs/reliability.md says why)
  "$PY" -m scripts.ts_models --config "$CONFIG" --state-file "$RUN_DIR/model_versions.json" \
    restore || echo "warning: not every saved model version was restored (above)" >&2
  usage_hint
}

stop() {
  local pid
  if ! pid=$(server_pid); then
    echo "TorchServe is not running."
    return 0
  fi
  ts --stop >/dev/null
  local keys
  if keys=$(keys_pid); then  # it would exit with TorchServe anyway; no renewal meanwhile
    kill "$keys" 2>/dev/null || true
  fi
  for _ in $(seq 120); do
    ps -p "$pid" >/dev/null 2>&1 || { echo "TorchServe stopped."; return 0; }
    sleep 0.5
  done
  echo "TorchServe (pid $pid) did not exit within 60 s" >&2
  exit 1
}

status() {
  local pid
  if ! pid=$(server_pid); then
    echo "TorchServe is not running."
    return 1
  fi
  echo "TorchServe is running (pid $pid)."
  local keys
  if keys=$(keys_pid); then
    echo "Key renewal is running (pid $keys)."
  else
    echo "Key renewal is not running (keys expire after token_expiration_min):" \
         "scripts/serve.sh start starts it." >&2
  fi
  "$PY" -m tsclient status --config "$CONFIG" --model "$MODEL"
}

cmd=${1:-status}
[ $# -gt 0 ] && shift
case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start "$@" ;;
  check-java) check_java && echo "Java is there: TorchServe can start." ;;
  *) echo "usage: scripts/serve.sh start|stop|status|restart|check-java" \
          "[--weights PATH] [--version STR]" >&2
     exit 2 ;;
esac

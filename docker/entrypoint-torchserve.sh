#!/bin/sh
# Entry point of the TorchServe image (run under tini, which forwards SIGTERM to the whole
# process group, so the Java frontend and the Python worker shut down with the container).
#
#   1. check that the configuration and every archive named in load_models exist, and fail
#      with a message that says how to fix it instead of a Java stack trace;
#   2. start in a private run directory: TorchServe writes key_file.json (all keys, 0600)
#      into its working directory;
#   3. when token auth is on and TORCHSERVE_KEY_EXPORT is set, start docker/ts_keys.py in the
#      background: it copies only the inference key to that file for the bot and renews it;
#   4. exec TorchServe in the foreground.
#
# Any other command (e.g. `docker run IMAGE bash`) is executed as given.
set -eu

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

CONFIG=${TORCHSERVE_CONFIG:-/home/model-server/config.properties}
MODEL_STORE=${TORCHSERVE_MODEL_STORE:-/home/model-server/model-store}
RUN_DIR=${TORCHSERVE_RUN_DIR:-/home/model-server/run}
KEY_EXPORT=${TORCHSERVE_KEY_EXPORT-/run/torchserve-keys/key.json}
KEYS_SCRIPT=${TORCHSERVE_KEYS_SCRIPT:-/opt/msgnet/docker/ts_keys.py}
RENEW_BEFORE=${TORCHSERVE_KEY_RENEW_BEFORE_S:-3600}

die() {
  echo "entrypoint-torchserve: $*" >&2
  exit 1
}

# the last value of a key in the Java properties file (enough for our flat config)
prop() {
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONFIG" | tail -n 1
}

lower() {
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]'
}

[ -r "$CONFIG" ] || die "config file $CONFIG not found or not readable (TORCHSERVE_CONFIG)"
[ -d "$MODEL_STORE" ] || die "model store $MODEL_STORE is not a directory (TORCHSERVE_MODEL_STORE)"

# TS_LOAD_MODELS overrides load_models when enable_envvars_config=true, as in TorchServe.
models=${TS_LOAD_MODELS:-$(prop load_models)}

# Learning a style (docs/serving.md, "Learning a style") runs on msgnet_learn, a worker of its
# own, loaded only when what a fit needs is mounted ($MSGNET_VGG, $MSGNET_LEARN_PHOTOS); the
# photo and clip models never depend on it.
learn_off=""
if [ ! -f "$MODEL_STORE/msgnet_learn.mar" ]; then
  learn_off="the model store has no msgnet_learn.mar (scripts/learn_model.py build)"
elif [ -z "${MSGNET_VGG:-}" ] || [ ! -f "$MSGNET_VGG" ]; then
  learn_off="MSGNET_VGG is not a file: mount the VGG16 loss network"
elif [ -z "${MSGNET_LEARN_PHOTOS:-}" ] || [ ! -d "$MSGNET_LEARN_PHOTOS" ]; then
  learn_off="MSGNET_LEARN_PHOTOS is not a folder: mount photos to learn on"
fi
case ",$(lower "$models")," in
  *,msgnet_learn=*|,,|,all,) ;;  # named already, or every archive of the store
  *)
    if [ -z "$learn_off" ]; then
      models="$models,msgnet_learn=msgnet_learn.mar"
      export TS_LOAD_MODELS="$models"
    else
      echo "entrypoint-torchserve: msgnet_learn is not loaded ($learn_off); learning" \
           "through REST is off, photos and clips are served as usual" >&2
    fi
    ;;
esac
case $(lower "$models") in
  ""|all)
    found=no
    for mar in "$MODEL_STORE"/*.mar; do
      [ -e "$mar" ] && found=yes && break
    done
    [ "$found" = yes ] || die "no .mar archive in $MODEL_STORE: build the image with \
--build-arg WEIGHTS=<weights file in the build context>, or mount a model store built by \
scripts/build_mar.py (see docs/deployment.md)"
    ;;
  *)
    old_ifs=$IFS
    IFS=,
    for entry in $models; do
      archive=${entry#*=}
      case $archive in
        *://*) continue ;;  # a URL: TorchServe checks it against allowed_urls
      esac
      [ -f "$MODEL_STORE/$archive" ] || die "load_models names $archive, which is not in \
$MODEL_STORE: build the image with --build-arg WEIGHTS=<weights file>, or mount a model \
store that has it (scripts/build_mar.py makes msgnet.mar, scripts/clip_model.py build \
makes msgnet_clip.mar; see docs/deployment.md)"
    done
    IFS=$old_ifs
    ;;
esac

mkdir -p "$RUN_DIR" || die "cannot create the run directory $RUN_DIR"
cd "$RUN_DIR"
# keys from an earlier start are void: TorchServe writes new ones
rm -f key_file.json

auth_off=$(lower "${TS_DISABLE_TOKEN_AUTHORIZATION:-$(prop disable_token_authorization)}")
if [ "$auth_off" = true ]; then
  echo "entrypoint-torchserve: token authorization is off; only a network policy keeps" \
       "other clients out" >&2
elif [ -n "$KEY_EXPORT" ]; then
  rm -f "$KEY_EXPORT"
  management=$(prop management_address)
  management=${TS_MANAGEMENT_ADDRESS:-${management:-http://127.0.0.1:8081}}
  management=$(printf '%s' "$management" | sed 's#://0\.0\.0\.0#://127.0.0.1#')
  python3 "$KEYS_SCRIPT" watch --key-file "$RUN_DIR/key_file.json" --export "$KEY_EXPORT" \
    --management-url "$management" --renew-before "$RENEW_BEFORE" &
fi

exec torchserve --foreground --ncs --ts-config "$CONFIG" --model-store "$MODEL_STORE" "$@"

"""The one TorchServe client of this repository: endpoints, keys, errors, forms, sync calls and
a private TorchServe. Standard library only: the bot (no torch) and the container health check
use it as well as the scripts, the workbench and the tests; the bot's async client
(``bot/services/torchserve.py``) shares its errors, keys and forms.

    tsclient.config    where a TorchServe listens (config.properties), private configs
    tsclient.keys      key_file.json: Keys, read_keys, InferenceKey
    tsclient.errors    TorchServeError (one class, with a kind and a code), answer mapping
    tsclient.form      multipart forms (stdlib bytes, or aiohttp.FormData)
    tsclient.http      sync calls: call, call_with_key, health, wait_ready
    tsclient.private   PrivateTorchServe: start and stop one on free ports

Command line (used by scripts/serve.sh): ``python -m tsclient wait|status|keys|anchor``.
"""

from tsclient.config import (
    DEFAULT_CONFIG,
    ROOT,
    Endpoints,
    client_url,
    free_port,
    read_properties,
    rewrite_properties,
    write_anchored_config,
    write_private_config,
)
from tsclient.errors import (
    BUSY,
    CLIENT,
    DOWN,
    INVALID_KEY,
    SERVER,
    STREAM_CUT,
    TIMEOUT,
    WORKER_DIED,
    InvalidKeyError,
    KeyFileError,
    TorchServeError,
    answer_error,
    key_rejected,
)
from tsclient.form import aiohttp_form, encode, multipart, style_form
from tsclient.http import call, call_with_key, health, wait_ready
from tsclient.keys import (
    DEFAULT_KEY_FILE,
    InferenceKey,
    Keys,
    auth_headers,
    key_file_path,
    read_keys,
)

__all__ = [
    "BUSY",
    "CLIENT",
    "DEFAULT_CONFIG",
    "DEFAULT_KEY_FILE",
    "DOWN",
    "INVALID_KEY",
    "ROOT",
    "SERVER",
    "STREAM_CUT",
    "TIMEOUT",
    "WORKER_DIED",
    "Endpoints",
    "InferenceKey",
    "InvalidKeyError",
    "KeyFileError",
    "Keys",
    "TorchServeError",
    "aiohttp_form",
    "answer_error",
    "auth_headers",
    "call",
    "call_with_key",
    "client_url",
    "encode",
    "free_port",
    "health",
    "key_file_path",
    "key_rejected",
    "multipart",
    "read_keys",
    "read_properties",
    "rewrite_properties",
    "style_form",
    "wait_ready",
    "write_anchored_config",
    "write_private_config",
]

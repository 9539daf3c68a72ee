"""Keys that expire under a running TorchServe (issue 41, item 4), against a real one.

TorchServe 0.12 keys expire after ``token_expiration_min`` and an expired key gets HTTP 400
``InvalidKeyException``. Here the keys live one minute: docker/ts_keys.py, started as
scripts/serve.sh starts it on a host, renews both keys before they expire, so calls that read
the key file keep working well past the minute, while a key held from before is refused, and
the bot's client reports that as an invalid key (code ``invalid_key``), not a server error.
No sleeping-and-hoping: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import tsclient
from bot.services import torchserve as bot_ts
from tsclient.private import PrivateTorchServe

from .helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = tsclient.ROOT
LIFETIME_MIN = 1


def key_entries(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def expires(entry: dict) -> datetime:
    stamp = entry["expiration time"]  # Java's Instant: 2026-12-01T13:40:39.201942193Z
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00")


@pytest.fixture(scope="module")
def short_keys(tmp_path_factory, tiny_weights_path) -> Iterator[PrivateTorchServe]:
    server = PrivateTorchServe(tmp_path_factory.mktemp("keys"),
                               token_expiration_min=str(LIFETIME_MIN))
    server.build_mar(tiny_weights_path, "--version", "1.0")
    with server.running(timeout=180):
        yield server


def test_serve_sh_starts_the_renewal_this_test_runs():
    text = (ROOT / "scripts" / "serve.sh").read_text()
    assert 'docker/ts_keys.py watch --key-file "$ROOT/key_file.json"' in text
    assert '--ts-config "$running_config" --while-pid "$1"' in text
    assert 'running_config=$RUN_DIR/config.properties' in text
    assert text.count('start_key_renewal "$') == 2  # after a start, and when already running


def test_one_minute_keys_are_renewed_and_calls_go_on_past_the_minute(short_keys):
    server = short_keys
    first = key_entries(server.key_file)
    first_expiry = min(expires(first["inference"]), expires(first["management"]))
    lifetime = (first_expiry - datetime.now(UTC)).total_seconds()
    assert 0 < lifetime <= LIFETIME_MIN * 60 + 1, first  # the derived config took effect
    old_inference = first["inference"]["key"]
    log = server.base / "ts_keys.log"
    with open(log, "wb") as out:
        renewer = subprocess.Popen(
            [sys.executable, str(ROOT / "docker" / "ts_keys.py"), "watch", "--key-file",
             str(server.key_file), "--ts-config", str(server.config), "--while-pid",
             str(server.proc.pid), "--interval", "0.5"], stdout=out, stderr=subprocess.STDOUT)
    try:
        def renewed() -> dict | None:
            now = key_entries(server.key_file)
            fresh = all(now[k]["key"] != first[k]["key"] for k in ("inference", "management"))
            return now if fresh else None

        second = wait_for(renewed, lifetime + 20, "both keys renewed")
        # renewed before the old keys expired, so no call ever met an expired key
        assert datetime.now(UTC) < first_expiry, log.read_text()
        assert expires(second["inference"]) > expires(first["inference"])

        # past the first keys' minute (and past the second keys' too: renewed again),
        # calls that read the key file keep working
        calls = 0
        past = expires(second["inference"]).timestamp() + 2

        def working_past_expiry() -> bool:
            nonlocal calls
            # as our scripts call: the key read from the file (again, once, if refused: a
            # renewal between the read and the call)
            _, ping = tsclient.call_with_key("GET", f"{server.endpoints.inference}/ping",
                                              "inference", server.key_file, timeout=10)
            assert ping["status"] == "Healthy"
            _, models = tsclient.call_with_key("GET", f"{server.endpoints.management}/models",
                                                "management", server.key_file, timeout=10)
            assert models["models"][0]["modelName"] == "msgnet"
            calls += 1
            return time.time() > past

        wait_for(working_past_expiry, LIFETIME_MIN * 60 + 40, "calls past the expiry", 2.0)
        assert calls >= 10
        assert key_entries(server.key_file)["inference"]["key"] != second["inference"]["key"]

        # a key held from before is refused as TorchServe does it: 400 InvalidKeyException
        with pytest.raises(tsclient.InvalidKeyError) as refused:
            tsclient.call("GET", f"{server.endpoints.inference}/ping", old_inference)
        assert refused.value.status == 400
        assert refused.value.body["type"] == "InvalidKeyException"
        assert "key" in str(refused.value) and "expired" in str(refused.value)
        assert renewer.poll() is None  # still at it
    finally:
        renewer.terminate()
        renewer.wait(timeout=10)
    text = log.read_text()
    assert "renewed the inference key" in text and "renewed the management key" in text


async def test_the_bot_client_reports_an_expired_key_and_follows_the_key_file(short_keys):
    server = short_keys
    stale = bot_ts.TorchServeClient(server.endpoints.inference, "msgnet", retries=3,
                                    key=bot_ts.InferenceKey("expired-or-wrong-key"))
    following = bot_ts.TorchServeClient(server.endpoints.inference, "msgnet",
                                        key=bot_ts.InferenceKey(key_file=str(server.key_file)))
    try:
        with pytest.raises(bot_ts.TorchServeError) as err:
            await stale.server_info()
        assert (err.value.code, err.value.status, err.value.attempts) == (
            bot_ts.INVALID_KEY, 400, 1)
        info = await following.server_info()
        assert info.preset("candy") is not None
    finally:
        await stale.close()
        await following.close()

"""The container entry points, run outside Docker with /bin/sh (dash, like Debian's), temporary
directories for the container paths, and fake ``torchserve`` / ``python`` executables that
record how they were started. The key hand-over runs the real docker/ts_keys.py."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from deploy_checks import ROOT

TS_ENTRY = ROOT / "docker/entrypoint-torchserve.sh"
BOT_ENTRY = ROOT / "docker/entrypoint-bot.sh"

FAKE_TORCHSERVE = """#!{python}
# Fake TorchServe: record argv/cwd, write key_file.json like TorchServe 0.12 does (mode 0600,
# in the working directory), wait for the exported inference key, record it, exit.
import json, os, sys, time
from pathlib import Path
record = {{"argv": sys.argv[1:], "cwd": os.getcwd(),
          "stale_key_file": Path("key_file.json").exists(),
          "load_models": os.environ.get("TS_LOAD_MODELS")}}
if os.environ.get("FAKE_WRITE_KEYS") == "1":
    keys = {{"management": {{"key": "MGMTkey1", "expiration time": "2099-01-01T00:00:00Z"}},
            "inference": {{"key": "INFkey12", "expiration time": "2099-01-01T00:00:00.5Z"}},
            "API": {{"key": "APIkey12"}}}}
    fd = os.open("key_file.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f)
    export = Path(os.environ["TORCHSERVE_KEY_EXPORT"])
    deadline = time.monotonic() + 15
    while not export.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if export.exists():
        record["export"] = json.loads(export.read_text())
        record["export_mode"] = oct(export.stat().st_mode & 0o777)
Path(os.environ["FAKE_RECORD"]).write_text(json.dumps(record))
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def ts_env(tmp_path: Path) -> dict[str, str]:
    """A fake container: config, model store with an archive, run dir, key volume, fake bin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "torchserve", FAKE_TORCHSERVE.format(python=sys.executable))
    (bin_dir / "python3").symlink_to(sys.executable)
    config = tmp_path / "config.properties"
    config.write_text((ROOT / "deploy/config.properties").read_text(encoding="utf-8"),
                      encoding="utf-8")
    store = tmp_path / "model-store"
    store.mkdir()
    (store / "msgnet.mar").write_bytes(b"PK")
    (store / "msgnet_clip.mar").write_bytes(b"PK")  # load_models names both
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "TORCHSERVE_CONFIG": str(config),
        "TORCHSERVE_MODEL_STORE": str(store),
        "TORCHSERVE_RUN_DIR": str(tmp_path / "run"),
        "TORCHSERVE_KEY_EXPORT": str(tmp_path / "keys" / "key.json"),
        "TORCHSERVE_KEYS_SCRIPT": str(ROOT / "docker/ts_keys.py"),
        "PYTHONPATH": str(ROOT),  # the image's /opt/msgnet: ts_keys.py imports tsclient
        "FAKE_RECORD": str(tmp_path / "record.json"),
    }


def run_entry(script: Path, env: dict[str, str], *args: str,
              timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run in its own process group and end that group afterwards: the key watcher keeps
    running in the background, as it does in the container until TorchServe stops."""
    # files, not pipes: the watcher would hold a pipe open after the entry point exits
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(["/bin/sh", str(script), *args], env=env, text=True,
                                stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


def record(env: dict[str, str]) -> dict:
    return json.loads(Path(env["FAKE_RECORD"]).read_text(encoding="utf-8"))


def test_torchserve_starts_in_the_foreground_and_exports_only_the_inference_key(ts_env):
    run_dir = Path(ts_env["TORCHSERVE_RUN_DIR"])
    run_dir.mkdir()
    (run_dir / "key_file.json").write_text("{}", encoding="utf-8")  # from an earlier start
    env = {**ts_env, "FAKE_WRITE_KEYS": "1"}
    done = run_entry(TS_ENTRY, env, "--disable-token-auth-is-not-used")
    assert done.returncode == 0, done.stderr
    rec = record(env)
    assert rec["argv"] == ["--foreground", "--ncs", "--ts-config", ts_env["TORCHSERVE_CONFIG"],
                           "--model-store", ts_env["TORCHSERVE_MODEL_STORE"],
                           "--disable-token-auth-is-not-used"]
    assert rec["cwd"] == str(run_dir) and rec["stale_key_file"] is False
    assert rec["export"] == {"inference": {"key": "INFkey12",
                                           "expiration time": "2099-01-01T00:00:00.500000+00:00"}}
    assert rec["export_mode"] == "0o640"
    for other in ("MGMTkey1", "APIkey12"):
        assert other not in json.dumps(rec["export"])
        assert other not in done.stdout + done.stderr


def test_torchserve_without_token_auth_exports_nothing(ts_env):
    env = {**ts_env, "TS_DISABLE_TOKEN_AUTHORIZATION": "TRUE"}
    done = run_entry(TS_ENTRY, env)
    assert done.returncode == 0
    assert "token authorization is off" in done.stderr
    assert not Path(ts_env["TORCHSERVE_KEY_EXPORT"]).exists()
    assert record(env)["argv"][0] == "--foreground"


@pytest.mark.parametrize("case, message", [
    ("no-config", "config file"),
    ("no-store", "is not a directory (TORCHSERVE_MODEL_STORE)"),
    ("no-archive", "load_models names msgnet.mar, which is not in"),
    ("no-clip-archive", "load_models names msgnet_clip.mar, which is not in"),
    ("empty-store-all", "no .mar archive in"),
])
def test_torchserve_refuses_to_start_with_a_clear_message(ts_env, case, message):
    env = dict(ts_env)
    store = Path(env["TORCHSERVE_MODEL_STORE"])
    if case == "no-config":
        env["TORCHSERVE_CONFIG"] = str(store / "missing.properties")
    elif case == "no-store":
        env["TORCHSERVE_MODEL_STORE"] = str(store / "missing")
    elif case == "no-clip-archive":
        (store / "msgnet_clip.mar").unlink()
    else:
        (store / "msgnet.mar").unlink()
        if case == "empty-store-all":
            (store / "msgnet_clip.mar").unlink()
            env["TS_LOAD_MODELS"] = "all"
    done = run_entry(TS_ENTRY, env)
    assert done.returncode == 1
    assert message in done.stderr and done.stderr.startswith("entrypoint-torchserve: ")
    assert not Path(env["FAKE_RECORD"]).exists(), "TorchServe must not have started"


def test_torchserve_load_models_override_and_urls(ts_env):
    env = {**ts_env, "TS_LOAD_MODELS": "other=other.mar,remote=https://example.org/x.mar",
           "TS_DISABLE_TOKEN_AUTHORIZATION": "true"}
    done = run_entry(TS_ENTRY, env)
    assert done.returncode == 1 and "names other.mar" in done.stderr
    (Path(env["TORCHSERVE_MODEL_STORE"]) / "other.mar").write_bytes(b"PK")
    assert run_entry(TS_ENTRY, env).returncode == 0  # the URL is left to TorchServe


@pytest.mark.parametrize("missing", ["", "archive", "vgg", "photos"])
def test_torchserve_loads_the_learn_model_only_when_learning_is_set_up(ts_env, tmp_path,
                                                                       missing: str):
    """msgnet_learn joins load_models when its archive, the VGG16 file and the photos are
    there; otherwise the server starts without it and says why (issue 39)."""
    store = Path(ts_env["TORCHSERVE_MODEL_STORE"])
    (tmp_path / "photos").mkdir()
    (tmp_path / "vgg.pt").write_bytes(b"vgg")
    env = {**ts_env, "TS_DISABLE_TOKEN_AUTHORIZATION": "true",
           "MSGNET_VGG": str(tmp_path / "vgg.pt"), "MSGNET_LEARN_PHOTOS": str(tmp_path / "photos")}
    if missing != "archive":
        (store / "msgnet_learn.mar").write_bytes(b"PK")
    if missing == "vgg":
        env["MSGNET_VGG"] = str(tmp_path / "absent.pt")
    elif missing == "photos":
        del env["MSGNET_LEARN_PHOTOS"]
    done = run_entry(TS_ENTRY, env)
    assert done.returncode == 0, done.stderr
    loaded = record(env)["load_models"]
    if not missing:
        assert loaded == "msgnet=msgnet.mar,msgnet_clip=msgnet_clip.mar," \
                         "msgnet_learn=msgnet_learn.mar"
        assert "msgnet_learn is not loaded" not in done.stderr
        return
    assert loaded is None  # the config's load_models, untouched
    word = {"archive": "msgnet_learn.mar", "vgg": "MSGNET_VGG", "photos": "MSGNET_LEARN_PHOTOS"}
    assert "msgnet_learn is not loaded" in done.stderr and word[missing] in done.stderr


def test_torchserve_entrypoint_runs_another_command_as_given(ts_env):
    done = run_entry(TS_ENTRY, ts_env, "echo", "hello")
    assert done.returncode == 0 and done.stdout == "hello\n"


@pytest.fixture
def bot_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "python", '#!/bin/sh\necho "python $*"\n')
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "TS_KEY_WAIT_S": "1"}


def test_bot_starts_python_m_bot(bot_env, tmp_path):
    key = tmp_path / "key.json"
    key.write_text('{"inference": {"key": "k"}}', encoding="utf-8")
    done = run_entry(BOT_ENTRY, {**bot_env, "TS_KEY_FILE": str(key)})
    assert done.returncode == 0 and done.stdout == "python -m bot\n"
    # without a key file to wait for, and with extra flags passed through
    done = run_entry(BOT_ENTRY, bot_env, "--flag")
    assert done.stdout == "python -m bot --flag\n"


def test_bot_waits_for_the_key_file_then_fails_clearly(bot_env, tmp_path):
    done = run_entry(BOT_ENTRY, {**bot_env, "TS_KEY_FILE": str(tmp_path / "none.json")})
    assert done.returncode == 1 and done.stdout == ""
    assert "did not appear" in done.stderr and "TORCHSERVE_KEY_EXPORT" in done.stderr


def test_bot_key_file_that_appears_while_waiting(bot_env, tmp_path):
    key = tmp_path / "late.json"
    proc = subprocess.Popen(["/bin/sh", str(BOT_ENTRY)], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            env={**bot_env, "TS_KEY_FILE": str(key), "TS_KEY_WAIT_S": "20"})
    try:
        key.write_text('{"inference": {"key": "k"}}', encoding="utf-8")
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and out == "python -m bot\n"


def test_bot_rejects_a_bad_wait(bot_env, tmp_path):
    done = run_entry(BOT_ENTRY, {**bot_env, "TS_KEY_FILE": str(tmp_path / "k"),
                                 "TS_KEY_WAIT_S": "1m"})
    assert done.returncode == 2 and "whole number of seconds" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_bot_names_the_group_when_the_key_is_unreadable(bot_env, tmp_path):
    key = tmp_path / "key.json"
    key.write_text("{}", encoding="utf-8")
    key.chmod(0)
    done = run_entry(BOT_ENTRY, {**bot_env, "TS_KEY_FILE": str(key)})
    assert done.returncode == 1 and "group_add" in done.stderr

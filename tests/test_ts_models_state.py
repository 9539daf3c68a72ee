"""scripts/ts_models.py's state file, without a server: what ``restore`` reads after a
TorchServe restart (the real restart: tests/integration/test_server_faults.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import ts_models
from tsclient import Endpoints, TorchServeError

STATE = {"default": "2.0", "versions": [
    {"version": "1.0", "mar": "msgnet.mar", "min_workers": 1, "max_workers": 1},
    {"version": "2.0", "mar": "msgnet-v2.mar", "min_workers": 1, "max_workers": 2}]}


def test_saving_one_model_keeps_the_others_and_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "run" / "model_versions.json"
    ts_models.save_state(path, "msgnet_clip", {"default": "1.0", "versions": []})
    ts_models.save_state(path, "msgnet", STATE)
    saved = json.loads(path.read_text())
    assert saved == {"msgnet": STATE, "msgnet_clip": {"default": "1.0", "versions": []}}
    assert [p.name for p in path.parent.iterdir()] == ["model_versions.json"]


def test_a_damaged_state_file_is_refused_with_its_name(tmp_path: Path):
    path = tmp_path / "model_versions.json"
    path.write_text('{"msgnet": ')
    with pytest.raises(TorchServeError, match="model_versions.json is not valid JSON"):
        ts_models.save_state(path, "msgnet", STATE)
    assert path.read_text() == '{"msgnet": '  # not overwritten


def test_restore_without_a_state_file_does_nothing(tmp_path: Path, capsys):
    endpoints = Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9")
    assert ts_models.restore(tmp_path / "absent.json", endpoints, None, tmp_path) == 0
    assert "nothing to restore" in capsys.readouterr().out

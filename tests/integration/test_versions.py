"""Model versions through scripts/ts_models.py against the live TorchServe."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from weights_factory import make_tiny_weights

pytestmark = pytest.mark.integration


def presets_of(server, version: str | None = None) -> dict:
    request = urllib.request.Request(server.predictions_url(version),
                                     data=json.dumps({"action": "presets"}).encode(),
                                     headers={**server.auth(),
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def run_ok(server, *args: str) -> str:
    result = server.script("ts_models.py", "--model-store", str(server.store), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def versions(server) -> dict:
    return json.loads(run_ok(server, "list", "--json"))


def management(server, method: str, path: str) -> int:
    request = urllib.request.Request(f"{server.management}{path}", method=method,
                                     headers=server.auth("management"))
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_register_list_default_predict_rollback_scale(torchserve, tmp_path):
    weights = make_tiny_weights(tmp_path / "v2.pt", seed=7, presets=("candy", "starry"))
    mar = torchserve.build_mar(weights, "2.0", archive_name="msgnet-v2")
    outside = tmp_path / "msgnet-v2.mar"  # registering from outside the store copies it in
    outside.write_bytes(mar.read_bytes())
    mar.unlink()
    try:
        run_ok(torchserve, "register", str(outside), "--workers", "1")
        state = versions(torchserve)
        assert [v["modelVersion"] for v in state["versions"]] == ["1.0", "2.0"]
        assert state["default"] == "1.0"
        assert "*" in run_ok(torchserve, "list")

        run_ok(torchserve, "set-default", "2.0")
        assert versions(torchserve)["default"] == "2.0"
        listing = presets_of(torchserve)  # the default version answers
        assert listing["model_version"] == "2.0"
        assert [p["name"] for p in listing["presets"]] == ["candy", "starry"]
        assert presets_of(torchserve, "1.0")["model_version"] == "1.0"  # explicit version

        out = run_ok(torchserve, "rollback")
        assert "1.0" in out
        assert versions(torchserve)["default"] == "1.0"
        assert presets_of(torchserve)["model_version"] == "1.0"

        run_ok(torchserve, "scale", "2.0", "--workers", "2")
        v2 = next(v for v in versions(torchserve)["versions"] if v["modelVersion"] == "2.0")
        assert (v2["minWorkers"], v2["maxWorkers"]) == (2, 2)
        assert [w["status"] for w in v2["workers"]] == ["READY", "READY"]
        assert presets_of(torchserve, "2.0")["model_version"] == "2.0"

        run_ok(torchserve, "unregister", "2.0")
        assert [v["modelVersion"] for v in versions(torchserve)["versions"]] == ["1.0"]
    finally:  # leave the session's server as the other tests expect it
        management(torchserve, "PUT", "/models/msgnet/1.0/set-default")
        management(torchserve, "DELETE", "/models/msgnet/2.0")


def test_rollback_without_older_version_fails_clearly(torchserve):
    result = torchserve.script("ts_models.py", "rollback")
    assert result.returncode == 1
    assert "no version older than the default 1.0" in result.stderr


@pytest.mark.parametrize("url", ["https://example.com/msgnet.mar", "file:///etc/msgnet.mar"])
def test_only_the_local_model_store_may_be_registered(torchserve, url):
    query = urllib.parse.urlencode({"url": url, "model_name": "intruder"})
    assert management(torchserve, "POST", f"/models?{query}") == 404
    assert management(torchserve, "GET", "/models/intruder") == 404

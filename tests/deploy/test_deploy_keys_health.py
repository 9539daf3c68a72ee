"""docker/ts_keys.py (hands TorchServe's inference key to the bot and renews it) and
docker/healthcheck.py, against temporary key files and small local HTTP servers."""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from deploy_checks import ROOT


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docker_{name}", ROOT / "docker" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ts_keys = load("ts_keys")
healthcheck = load("healthcheck")


def write_keys(path: Path, inference: str = "INFkey12", expires: datetime | None = None) -> None:
    expires = expires or datetime.now(UTC) + timedelta(days=7)
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # Java prints nanoseconds
    path.write_text(json.dumps({
        "management": {"key": "MGMTkey1", "expiration time": stamp},
        "inference": {"key": inference, "expiration time": stamp},
        "API": {"key": "APIkey12"}}), encoding="utf-8")


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``server.reply`` and records method, path and headers."""

    def _answer(self) -> None:
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        status, body = self.server.reply(self)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    srv = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    srv.requests = []
    srv.reply = lambda handler: (200, b"{}")
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def url(srv: http.server.HTTPServer, path: str = "") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ ts_keys.py

def test_parse_instant_reads_java_instants():
    assert ts_keys.parse_instant("2026-12-01T13:40:39.201942193Z") == \
        datetime(2026, 12, 1, 13, 40, 39, 201942, tzinfo=UTC)
    assert ts_keys.parse_instant("2026-12-01T13:40:39Z").microsecond == 0
    assert ts_keys.parse_instant("yesterday") is None


def test_watcher_exports_only_the_inference_key_and_follows_changes(tmp_path: Path):
    key_file, target = tmp_path / "key_file.json", tmp_path / "vol" / "key.json"
    watcher = ts_keys.Watcher(key_file, target, "http://127.0.0.1:9", renew_before_s=3600)
    assert watcher.step() == "waiting" and not target.exists()
    write_keys(key_file)
    assert watcher.step() == "exported"
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert exported["inference"]["key"] == "INFkey12"
    assert "MGMTkey1" not in target.read_text() and "APIkey12" not in target.read_text()
    assert target.stat().st_mode & 0o777 == 0o640
    assert watcher.step() == "unchanged"
    write_keys(key_file, inference="NEWkey99")
    assert watcher.step() == "exported"
    assert json.loads(target.read_text())["inference"]["key"] == "NEWkey99"
    assert [p.name for p in target.parent.iterdir()] == ["key.json"]  # no temp files left


def test_watcher_reports_a_half_written_key_file(tmp_path: Path):
    key_file = tmp_path / "key_file.json"
    key_file.write_text('{"inference": {"ke', encoding="utf-8")
    watcher = ts_keys.Watcher(key_file, tmp_path / "k.json", "http://127.0.0.1:9", 3600)
    with pytest.raises(ts_keys.KeyFileError, match="not a TorchServe key file"):
        watcher.step()


def test_watcher_renews_the_inference_key_before_it_expires(tmp_path: Path, server):
    key_file = tmp_path / "key_file.json"
    write_keys(key_file, expires=datetime.now(UTC) + timedelta(minutes=30))
    watcher = ts_keys.Watcher(key_file, tmp_path / "k.json", url(server), renew_before_s=3600,
                              retry_s=60)
    assert watcher.step() == "renewed"
    # both keys that expire (the management key too: ts_models, the healthcheck's neighbours)
    assert [(m, p) for m, p, _ in server.requests] == [("POST", "/token?type=inference"),
                                                       ("POST", "/token?type=management")]
    assert all(h["Authorization"] == "Bearer APIkey12" for _, _, h in server.requests)
    assert watcher.step() == "unchanged"  # not again while TorchServe rewrites the file
    assert len(server.requests) == 2


def test_a_short_key_lifetime_is_renewed_at_half_its_life(tmp_path: Path, server):
    """token_expiration_min=1: renewing 3600 s ahead would renew forever; half a minute
    ahead renews once, in time. Without --export the watcher only renews (the host)."""
    assert ts_keys.renew_before_for(3600, 1) == 30
    assert ts_keys.renew_before_for(3600, 10080) == 3600
    assert ts_keys.renew_before_for(3600, None) == 3600
    key_file = tmp_path / "key_file.json"
    write_keys(key_file, expires=datetime.now(UTC) + timedelta(seconds=50))
    watcher = ts_keys.Watcher(key_file, None, url(server), renew_before_s=30)
    assert watcher.step() == "unchanged" and server.requests == []
    write_keys(key_file, expires=datetime.now(UTC) + timedelta(seconds=20))
    assert watcher.step() == "renewed" and len(server.requests) == 2
    assert sorted(tmp_path.iterdir()) == [key_file]  # nothing exported


def test_the_host_watcher_stops_with_torchserve(tmp_path: Path):
    import subprocess
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        config = tmp_path / "config.properties"
        config.write_text("management_address=http://0.0.0.0:9\ntoken_expiration_min=1\n")
        watch = subprocess.Popen([sys.executable, str(ROOT / "docker" / "ts_keys.py"), "watch",
                                  "--key-file", str(tmp_path / "key_file.json"), "--ts-config",
                                  str(config), "--while-pid", str(sleeper.pid),
                                  "--interval", "0.1"], stderr=subprocess.PIPE, text=True)
        sleeper.kill()
        sleeper.wait()
        _, err = watch.communicate(timeout=20)
        assert watch.returncode == 0, err
        assert "renewing keys 30 s before they expire through http://127.0.0.1:9" in err
        assert f"TorchServe (pid {sleeper.pid}) has exited" in err
    finally:
        sleeper.kill()


def test_watcher_does_not_renew_a_fresh_key_and_survives_a_failed_renewal(tmp_path, server):
    key_file = tmp_path / "key_file.json"
    write_keys(key_file)
    fresh = ts_keys.Watcher(key_file, tmp_path / "k.json", url(server), renew_before_s=3600)
    assert fresh.step() == "exported" and server.requests == []
    write_keys(key_file, expires=datetime.now(UTC) + timedelta(seconds=10))
    down = ts_keys.Watcher(key_file, tmp_path / "k2.json", f"http://127.0.0.1:{free_port()}",
                           renew_before_s=3600)
    assert down.step() == "renew-failed"
    assert (tmp_path / "k2.json").exists()  # the current key was still handed over


def test_export_command_exit_codes(tmp_path: Path, capsys):
    key_file, target = tmp_path / "key_file.json", tmp_path / "key.json"
    args = ["export", "--key-file", str(key_file), "--export", str(target), "--renew-before", "0"]
    assert ts_keys.main(args) == 1
    key_file.write_text("[]", encoding="utf-8")
    assert ts_keys.main(args) == 1 and "not a TorchServe key file" in capsys.readouterr().err
    write_keys(key_file)
    assert ts_keys.main(args) == 0 and target.exists()


# -------------------------------------------------------------------------- healthcheck.py

def test_torchserve_health_sends_the_inference_key(tmp_path: Path, server, capsys):
    key_file = tmp_path / "key_file.json"
    write_keys(key_file)

    def reply(handler):
        if handler.headers.get("Authorization") != "Bearer INFkey12":
            return 400, b'{"code": 400, "message": "Token Authorization failed"}'
        return 200, b'{"status": "Healthy"}'

    server.reply = reply
    argv = ["torchserve", "--url", url(server, "/ping"), "--key-file", str(key_file)]
    assert healthcheck.main(argv, env={}) == 0
    assert server.requests[-1][1] == "/ping"
    missing = ["torchserve", "--url", url(server, "/ping"), "--key-file", str(tmp_path / "no")]
    assert healthcheck.main(missing, env={}) == 1
    out = capsys.readouterr().out
    assert "unhealthy" in out and "HTTP 400" in out and "INFkey12" not in out


def test_torchserve_health_needs_status_healthy(tmp_path: Path, server, capsys):
    server.reply = lambda handler: (200, b'{"status": "Partial Healthy"}')
    argv = ["torchserve", "--url", url(server, "/ping"), "--key-file", str(tmp_path / "none")]
    assert healthcheck.main(argv, env={}) == 1
    assert "Partial Healthy" in capsys.readouterr().out
    down = ["torchserve", "--url", f"http://127.0.0.1:{free_port()}/ping",
            "--key-file", str(tmp_path / "none"), "--timeout", "2"]
    assert healthcheck.main(down, env={}) == 1


def test_bot_health_probes_metrics_and_webhook(server, capsys):
    port = server.server_address[1]
    assert healthcheck.main(["bot"], env={"METRICS_PORT": str(port)}) == 0
    assert server.requests[-1][1] == "/metrics"
    env = {"METRICS_PORT": str(port), "WEBHOOK_URL": "https://x", "WEBHOOK_PORT": str(port)}
    assert healthcheck.main(["bot"], env=env) == 0
    assert "metrics, webhook" in capsys.readouterr().out
    closed = {"WEBHOOK_URL": "https://x", "WEBHOOK_PORT": str(free_port())}
    assert healthcheck.main(["bot"], env=closed) == 1
    assert "webhook port" in capsys.readouterr().out

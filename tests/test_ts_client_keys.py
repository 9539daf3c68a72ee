"""tsclient (the sync calls) against a stand-in TorchServe that refuses keys as 0.12 does (HTTP 400
InvalidKeyException for a wrong or expired key): a clear error naming the key, and
call_with_key reading a renewed key file once more (issue 41, item 4)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import tsclient

INVALID = {"code": 400, "type": "InvalidKeyException",
           "message": "Token Authorization failed. Token either incorrect, expired, or not "
                      "provided correctly"}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.seen.append(self.headers.get("Authorization"))
        self.server.on_request()
        ok = self.headers.get("Authorization") == f"Bearer {self.server.key}"
        body = json.dumps({"status": "Healthy"} if ok else INVALID).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    srv.key, srv.seen, srv.on_request = "CURRENT", [], lambda: None
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def write_keys(path: Path, inference: str) -> None:
    path.write_text(json.dumps({"inference": {"key": inference}, "management": {"key": "M"},
                                "API": {"key": "A"}}))


def test_a_refused_key_is_an_invalid_key_error_that_says_so(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/ping"
    with pytest.raises(tsclient.InvalidKeyError) as err:
        tsclient.call("GET", url, "EXPIRED")
    assert err.value.status == 400 and err.value.body["type"] == "InvalidKeyException"
    assert "refused the key (wrong or expired" in str(err.value)
    assert "scripts/serve.sh start runs the renewal" in str(err.value)
    assert tsclient.key_rejected(403, b"") and not tsclient.key_rejected(400, {"code": "x"})


def test_call_with_key_reads_a_renewed_key_file_once_more(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}/ping"
    keys = tmp_path / "key_file.json"
    write_keys(keys, "OLD")
    # the key is renewed between our read and the call: refused once, then read again
    server.on_request = lambda: write_keys(keys, "CURRENT")
    assert tsclient.call_with_key("GET", url, "inference", keys)[1] == {"status": "Healthy"}
    assert server.seen == ["Bearer OLD", "Bearer CURRENT"]
    server.seen.clear()
    server.on_request = lambda: None
    write_keys(keys, "STILL-WRONG")
    with pytest.raises(tsclient.InvalidKeyError):
        tsclient.call_with_key("GET", url, "inference", keys)
    assert server.seen == ["Bearer STILL-WRONG"] * 2  # once more, not forever

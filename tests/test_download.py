"""msgnet.model.download against local sources only: file:// URLs and an http.server on
127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgnet.model.download import OFFICIAL_URL, DownloadError, download_file, download_official

PAYLOAD = bytes(range(256)) * 700  # ~175 KB: several chunks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/short":  # promises more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of a throwaway HTTP server on a free local port."""
    root = tmp_path / "served"
    root.mkdir()

    def handler(*args, **kw):
        return _Handler(*args, directory=str(root), **kw)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_official_url_is_the_release_asset() -> None:
    assert OFFICIAL_URL == ("https://github.com/zhanghang1989/PyTorch-Multi-Style-Transfer/"
                            "releases/download/v0.1/21styles.model")


def test_file_url_with_checksum(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "21styles.model"
    got = download_file(src.as_uri(), dest, progress=False,
                        expected_sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert got == dest and dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == []


def test_http_download_with_progress_bar(server, tmp_path: Path, capsys) -> None:
    base, root = server
    (root / "21styles.model").write_bytes(PAYLOAD)
    dest = tmp_path / "w.model"
    download_file(f"{base}/21styles.model", dest, progress=True)
    assert dest.read_bytes() == PAYLOAD
    assert "w.model" in capsys.readouterr().err  # tqdm draws on stderr


def test_checksum_mismatch_keeps_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "dest.bin"
    with pytest.raises(DownloadError, match="SHA-256 is .*, expected 00"):
        download_file(src.as_uri(), dest, expected_sha256="00" * 32, progress=False)
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_offline_error_says_what_to_do(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/21styles.model"  # nothing listens there
    dest = tmp_path / "w.model"
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, timeout=5, progress=False)
    message = str(info.value)
    assert f"cannot reach {url}" in message and "offline?" in message
    assert "download it by hand" in message and "--weights PATH" in message
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_http_error_status(server, tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(f"{base}/absent.model", tmp_path / "w.model", progress=False)


def test_interrupted_transfer_is_not_kept(server, tmp_path: Path) -> None:
    base, _ = server
    dest = tmp_path / "w.model"
    dest.write_bytes(b"previous good file")
    with pytest.raises(DownloadError, match="try again"):
        download_file(f"{base}/short", dest, progress=False, timeout=5)
    assert dest.read_bytes() == b"previous good file"  # the old file was not clobbered
    assert _leftovers(tmp_path) == []


def test_download_official_falls_back_and_validates(server, tmp_path: Path,
                                                    tiny_weights_path: Path) -> None:
    base, root = server
    (root / "21styles.model").write_bytes(tiny_weights_path.read_bytes())
    dest = tmp_path / "weights" / "21styles.model"
    got = download_official(dest, urls=(f"{base}/missing", f"{base}/21styles.model"),
                            progress=False)
    assert got == dest and dest.read_bytes() == tiny_weights_path.read_bytes()


def test_download_official_rejects_a_file_that_is_not_weights(server, tmp_path: Path) -> None:
    base, root = server
    (root / "page.html").write_bytes(b"<html>sign in</html>")
    dest = tmp_path / "21styles.model"
    with pytest.raises(DownloadError, match="not MSG-Net weights"):
        download_official(dest, urls=(f"{base}/page.html",), progress=False)
    assert not dest.exists() and (tmp_path / "21styles.model.invalid").exists()


def test_download_official_offline_names_every_url(tmp_path: Path) -> None:
    port = free_port()
    urls = (f"http://127.0.0.1:{port}/a.model", f"http://127.0.0.1:{port}/b.model")
    with pytest.raises(DownloadError) as info:
        download_official(tmp_path / "x.model", urls=urls, timeout=5, progress=False)
    assert "offline?" in str(info.value) and "a.model" in str(info.value)
    assert "b.model" in str(info.value) and "--weights PATH" in str(info.value)

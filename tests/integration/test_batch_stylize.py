"""scripts.batch_stylize: a folder through the live TorchServe, and 503 retries."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from .helpers import encode, noise_image

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ["-m", "scripts.batch_stylize"]


def test_folder_with_one_corrupt_file(torchserve, tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(encode(noise_image(120, 80, seed=11), "JPEG"))
    (photos / "b.png").write_bytes(encode(noise_image(80, 120, seed=12)))
    (photos / "c.jpg").write_bytes(encode(noise_image(80, 80, seed=13), "JPEG")[:200])
    (photos / "notes.txt").write_text("not an image: skipped by suffix")
    summary = tmp_path / "summary.json"
    result = torchserve.script("batch_stylize.py", str(photos), "-o", str(out), "--preset",
                               "candy", "--size", "96", "--json", str(summary), "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg"]
    results = {r["image"]: r for r in json.loads(summary.read_text())["results"]}
    assert set(results) == {"a.jpg", "b.png", "c.jpg"}
    assert results["a.jpg"]["ok"] and results["b.png"]["ok"]
    assert not results["c.jpg"]["ok"] and results["c.jpg"]["status"] == 400
    assert results["c.jpg"]["attempts"] == 1  # a 4xx is final
    assert "corrupt_image" in results["c.jpg"]["error"]
    assert "2/3 succeeded" in result.stdout and "FAILED" in result.stdout


async def test_retries_503_with_backoff(tmp_path, unused_tcp_port):
    """Against a stand-in server that is busy twice, then answers."""
    calls = []

    async def predict(request: web.Request) -> web.Response:
        calls.append(request.headers.get("Authorization"))
        await request.read()
        if len(calls) <= 2:
            return web.json_response({"code": 503, "message": "busy"}, status=503)
        return web.Response(body=b"\xff\xd8stylized", content_type="image/jpeg")

    async with stand_in(predict, unused_tcp_port):
        photos, out, keys = one_photo_and_key(tmp_path)
        proc = await _run(sys.executable, *SCRIPT, str(photos), "-o", str(out), "--preset",
                          "candy", "--url", f"http://127.0.0.1:{unused_tcp_port}",
                          "--key-file", str(keys), "--backoff", "0.05", "--quiet")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (out / "a.jpg").read_bytes() == b"\xff\xd8stylized"
        assert calls == ["Bearer K"] * 3
        assert "1/1 succeeded" in proc.stdout


async def test_a_refused_key_is_read_again_once_then_reported(tmp_path, unused_tcp_port):
    """TorchServe 0.12 answers a wrong or expired key with 400 InvalidKeyException: the key
    file is read again and the image sent once more (a renewed key goes through); a key still
    refused fails that image with a message that names the key, not a bare 400."""
    calls, next_key = [], ["RENEWED"]
    invalid = {"code": 400, "type": "InvalidKeyException",
               "message": "Token Authorization failed. Token either incorrect, expired, or "
                          "not provided correctly"}

    async def predict(request: web.Request) -> web.Response:
        calls.append(request.headers.get("Authorization"))
        await request.read()
        if request.headers.get("Authorization") != "Bearer RENEWED":
            # the key file is rewritten while the request is refused: renewed (first run), or
            # with another key TorchServe does not take either (second run)
            (tmp_path / "key_file.json").write_text(json.dumps(
                {"inference": {"key": next_key[0]}}))
            return web.json_response(invalid, status=400)
        return web.Response(body=b"\xff\xd8stylized", content_type="image/jpeg")

    async with stand_in(predict, unused_tcp_port):
        photos, out, keys = one_photo_and_key(tmp_path)
        argv = [sys.executable, *SCRIPT, str(photos), "-o", str(out), "--preset", "candy",
                "--url", f"http://127.0.0.1:{unused_tcp_port}", "--key-file", str(keys),
                "--backoff", "0.05", "--quiet", "--retries", "3"]
        proc = await _run(*argv)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert calls == ["Bearer K", "Bearer RENEWED"]
        keys.write_text(json.dumps({"inference": {"key": "K"}}))
        calls.clear()
        next_key[0] = "STILL-OLD"
        argv[argv.index(str(out))] = str(tmp_path / "out2")
        proc = await _run(*argv)
        assert proc.returncode == 1
        assert calls == ["Bearer K", "Bearer STILL-OLD"]  # once more, not --retries times
        assert "refused the key (wrong or expired)" in proc.stdout + proc.stderr


@contextlib.asynccontextmanager
async def stand_in(predict, port: int) -> AsyncIterator[None]:
    """A stand-in TorchServe on ``port`` whose predictions endpoint is ``predict``."""
    app = web.Application()
    app.router.add_post("/predictions/msgnet", predict)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def one_photo_and_key(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A folder with one small photo, the output folder, and a key file with key ``K``."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    (photos / "a.png").write_bytes(encode(noise_image(16, 16)))
    keys = tmp_path / "key_file.json"
    keys.write_text(json.dumps({"inference": {"key": "K"}}))
    return photos, out, keys


async def _run(*cmd: str) -> subprocess.CompletedProcess:
    import asyncio

    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, cwd=ROOT)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout.decode(), stderr.decode())


async def test_style_controls_are_sent_as_form_fields(tmp_path, unused_tcp_port):
    """A mix, strength, colours and a sheet reach the server as the REST fields."""
    forms = []

    async def predict(request: web.Request) -> web.Response:
        form = await request.post()
        forms.append({k: v for k, v in form.items() if k != "content"})
        return web.Response(body=b"\xff\xd8ok", content_type="image/jpeg")

    async with stand_in(predict, unused_tcp_port):
        photos, out, keys = one_photo_and_key(tmp_path)
        proc = await _run(sys.executable, *SCRIPT, str(photos), "-o", str(out), "--preset",
                          "candy:0.7,udnie:0.3", "--sheet", "--strength", "0.5",
                          "--keep-colors", "--url", f"http://127.0.0.1:{unused_tcp_port}",
                          "--key-file", str(keys), "--quiet")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert sorted(p.name for p in out.iterdir()) == ["a__candy0.7+udnie0.3.jpg",
                                                         "a__sheet.jpg"]
        by_kind = {f.get("action", "stylize"): f for f in forms}
        assert by_kind["stylize"] == {"style_id": "candy:0.7,udnie:0.3", "size": "512",
                                      "strength": "0.5", "keep_colors": "true",
                                      "format": "jpeg"}
        assert by_kind["sheet"] == {"action": "sheet", "size": "256", "strength": "0.5",
                                    "keep_colors": "true", "format": "jpeg"}


@pytest.mark.parametrize("argv,message", [
    (["--preset", "candy", "--strength", "2"], "--strength must be from 0 to 1"),
    (["--preset", "candy", "--brush", "large"], "--brush applies to --style images"),
])
def test_control_argument_errors(tmp_path, argv, message):
    result = subprocess.run([sys.executable, *SCRIPT, str(tmp_path), "-o",
                             str(tmp_path / "o"), *argv], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 2 and message in result.stderr

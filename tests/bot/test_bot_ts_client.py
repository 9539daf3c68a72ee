"""The TorchServe client against the fake TorchServe: success, retries, error mapping, auth,
timeouts and the preset cache."""

from __future__ import annotations

import asyncio
import json
import os
import socket

import pytest
from bot_helpers import dims, jpeg

from bot.services import torchserve as ts
from fakes.torchserve import INVALID_KEY_BODY, key_file


def client(url: str, **kw) -> ts.TorchServeClient:
    kw.setdefault("key", ts.InferenceKey("inference-key"))
    kw.setdefault("retry_delay", 0.01)
    return ts.TorchServeClient(url, "msgnet", **kw)


@pytest.fixture
async def make_client():
    made = []

    def factory(url, **kw):
        c = client(url, **kw)
        made.append(c)
        return c

    yield factory
    for c in made:
        await c.close()


async def test_stylize_sends_content_style_and_size(fts, make_client):
    c = make_client(fts.url)
    out = await c.stylize(jpeg(300, 200), style_id="candy", size=768)
    assert out.content_type == "image/jpeg" and dims(out.data) == (768, 512)
    out = await c.stylize(jpeg(300, 200), style=jpeg(50, 50), size=256, fmt="png")
    assert out.content_type == "image/png" and out.extension == "png"
    assert fts.stylized[-1] == {"size": 256, "style": "image", "content": (300, 200)}
    assert fts.requests[-1]["fields"] == ["content", "format", "size", "style"]


async def test_503_is_retried_with_backoff_then_succeeds(fts, make_client):
    fts.script.fail = [(503, {"code": 503, "message": "Model is overloaded"})] * 2
    out = await make_client(fts.url, retries=3).stylize(jpeg(64, 64), style_id="candy")
    assert out.data and len(fts.requests) == 3


async def test_503_after_all_retries_is_busy(fts, make_client):
    fts.script.fail = [(503, {"message": "overloaded"})] * 5
    with pytest.raises(ts.TorchServeError) as err:
        await make_client(fts.url, retries=3).stylize(jpeg(64, 64), style_id="candy")
    assert err.value.kind == ts.BUSY and err.value.attempts == 3 and len(fts.requests) == 3


async def test_connection_refused_is_down_after_retries(make_client):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ts.TorchServeError) as err:
        await make_client(f"http://127.0.0.1:{port}", retries=2).stylize(
            jpeg(64, 64), style_id="candy")
    assert err.value.kind == ts.DOWN and err.value.attempts == 2


@pytest.mark.parametrize("data, code, status", [
    (b"%PDF-1.4 not an image", "not_an_image", 400),
    (jpeg(200, 200)[:300], "corrupt_image", 400),
])
async def test_handler_error_json_is_mapped(fts, make_client, data, code, status):
    with pytest.raises(ts.TorchServeError) as err:
        await make_client(fts.url).stylize(data, style_id="candy")
    assert (err.value.kind, err.value.code, err.value.status) == (ts.CLIENT, code, status)
    assert err.value.message.startswith("content:") and len(fts.requests) == 1  # no retry


async def test_unknown_preset_and_bad_size(fts, make_client):
    c = make_client(fts.url)
    with pytest.raises(ts.TorchServeError) as err:
        await c.stylize(jpeg(64, 64), style_id="nope")
    assert err.value.code == "unknown_preset"
    with pytest.raises(ts.TorchServeError) as err:
        await c.stylize(jpeg(64, 64), style_id="candy", size=5000)
    assert err.value.code == "bad_option"


async def test_wrong_model_name_is_a_server_error(fts, make_client):
    c = ts.TorchServeClient(fts.url, "no-such-model", key=ts.InferenceKey("inference-key"))
    try:
        with pytest.raises(ts.TorchServeError) as err:
            await c.stylize(jpeg(64, 64), style_id="candy")
        assert err.value.kind == ts.SERVER and err.value.status == 404
    finally:
        await c.close()


async def test_a_wrong_key_is_an_invalid_key_error_not_retried(fts, make_client, tmp_path):
    """TorchServe 0.12 answers a wrong or expired key with 400 InvalidKeyException (not 401):
    the key file is read again, and a key still refused is INVALID_KEY at once (no 3 tries)."""
    path = tmp_path / "key_file.json"
    key_file(path, "old-key")
    c = make_client(fts.url, key=ts.InferenceKey(key_file=str(path)), retries=3)
    with pytest.raises(ts.TorchServeError) as err:
        await c.stylize(jpeg(64, 64), style_id="candy")
    assert (err.value.kind, err.value.code, err.value.status) == (ts.SERVER, ts.INVALID_KEY, 400)
    assert err.value.attempts == 1 and fts.refused == ["old-key"]
    key_file(path, "inference-key")  # TorchServe restarted, or renewed the key
    assert (await c.stylize(jpeg(64, 64), style_id="candy")).data


async def test_a_key_renewed_under_the_client_is_read_again_and_sent_once_more(
        fts, make_client, tmp_path):
    """The key file changed but the client still holds the old key (the same mtime: a
    renewal within the file system's time granularity): the 400 makes it read the file
    again, and the request goes through on the second try."""
    path = tmp_path / "key_file.json"
    key_file(path, "old-key")
    c = make_client(fts.url, key=ts.InferenceKey(key_file=str(path)))
    fts.key = "old-key"
    assert (await c.stylize(jpeg(64, 64), style_id="candy")).data
    stat = path.stat()
    key_file(path, "renewed-key")  # TorchServe renewed it: the old one is void at once
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fts.key = "renewed-key"
    assert (await c.stylize(jpeg(64, 64), style_id="candy")).data
    assert fts.refused == ["old-key"]  # one refused attempt, then the renewed key


async def test_a_401_or_403_from_a_proxy_is_an_invalid_key_too(fts, make_client):
    fts.script.fail = [(401, {"message": "Unauthorized"})]
    with pytest.raises(ts.TorchServeError) as err:
        await make_client(fts.url).stylize(jpeg(64, 64), style_id="candy")
    assert (err.value.code, err.value.status) == (ts.INVALID_KEY, 401)


def test_only_torchserves_invalid_key_400_counts_as_a_refused_key():
    body = json.dumps(INVALID_KEY_BODY).encode()
    assert ts.TorchServeClient.key_rejected(400, body)
    assert not ts.TorchServeClient.key_rejected(400, b'{"code": "not_an_image"}')
    assert not ts.TorchServeClient.key_rejected(400, b"not json")
    assert not ts.TorchServeClient.key_rejected(503, body)


async def test_no_answer_within_the_timeout(fts, make_client):
    fts.script.gate = asyncio.Event()  # never released: the server "hangs"
    with pytest.raises(ts.TorchServeError) as err:
        await make_client(fts.url, timeout=0.3).stylize(jpeg(64, 64), style_id="candy")
    assert err.value.kind == ts.TIMEOUT and len(fts.requests) == 1


async def test_server_info_is_cached_and_a_stale_copy_survives_an_outage(fts, make_client):
    c = make_client(fts.url, info_ttl=0.0, retries=1)
    info = await c.server_info()
    assert info.preset("candy").preview and not info.preset("mosaic").preview
    assert info.default_size == 512 and 768 in info.sizes and info.max_size == 2048
    cached = make_client(fts.url, info_ttl=300)
    await cached.server_info()
    await cached.server_info()
    assert sum(1 for r in fts.requests if r.get("action") == "presets") == 2
    await fts.close()
    assert (await c.server_info()) == info  # stale but usable
    with pytest.raises(ts.TorchServeError):
        await c.server_info(refresh=True)


async def test_preview_bytes_and_missing_previews(fts, make_client):
    c = make_client(fts.url)
    assert dims(await c.preview("candy")) == (64, 64)
    await c.preview("candy")
    assert sum(1 for r in fts.requests if r.get("action") == "preview") == 1
    with pytest.raises(ts.TorchServeError) as err:
        await c.preview("mosaic")
    assert err.value.code == "no_preview"


def test_server_info_parsing_is_tolerant():
    info = ts.ServerInfo.from_json({"presets": ["a", {"name": "b", "preview": True}, 3],
                                    "default_size": 640, "max_size": 1024,
                                    "sizes": [256, 640, 4096]})
    assert [p.name for p in info.presets] == ["a", "b"] and info.sizes == (256, 640)

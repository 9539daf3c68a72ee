"""Clips through a real TorchServe (issue 14): a GIF and a video as ``content`` come back
encoded with their Content-Type; a clip over the limits is a 413 JSON."""

from __future__ import annotations

import aiohttp
import pytest
from PIL import Image

from msgnet.clip_decode import open_clip
from scripts import clip_samples as cs

from .helpers import form, post

pytestmark = pytest.mark.integration


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session:
        yield session


async def test_gif_and_video_come_back_encoded(torchserve, http):
    url, auth = torchserve.predictions_url(), torchserve.auth()
    gif = cs.animation("GIF", 4, 64, 48, durations=[100, 200, 100, 200], loop=0)
    reply = await post(http, url, auth, data=form(content=gif, style_id="candy",
                                                  strength="0.6", size="64"))
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/gif"
    assert open_clip(reply.body).info.durations_ms == (100, 200, 100, 200)

    mp4 = cs.video(8, fps=8, width=96, height=64, audio="aac")
    reply = await post(http, url, auth, data=form(content=mp4, style_id="mosaic", size="64"))
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "video/mp4"
    info = open_clip(reply.body).info
    assert (info.frames, info.fps, info.width, info.height, info.audio) == (8, 8.0, 64, 42,
                                                                           "aac")
    assert reply.headers["X-Msgnet-Clip"].startswith("frames=8;fps=8.000;seconds=1.000")


async def test_a_clip_over_the_limit_is_a_413(torchserve, http):
    long_clip = cs.video(16 * 2, fps=2, width=16, height=16)  # 16 s > 15 s
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       data=form(content=long_clip, style_id="candy"))
    assert reply.status == 413
    body = reply.json()
    assert body["code"] == "clip_too_long" and body["field"] == "content"
    assert "limit is 15 s" in body["message"]


async def test_the_presets_answer_has_the_clip_limits(torchserve, http):
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       json={"action": "presets"})
    clips = reply.json()["clips"]
    assert clips["max_seconds"] == 15 and clips["size"] == 96  # MSGNET_CLIP_SIZE of the tests


def test_batch_stylize_handles_clips_beside_photos(torchserve, tmp_path):
    from .helpers import encode, noise_image

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(encode(noise_image(80, 60, seed=3), "JPEG"))
    (folder / "anim.gif").write_bytes(cs.animation("GIF", 3, 48, 32))
    (folder / "clip.mp4").write_bytes(cs.video(4, fps=4, width=48, height=32))
    result = torchserve.script("batch_stylize.py", str(folder), "-o", str(out), "--preset",
                               "candy", "--size", "64", "--clip-size", "64", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["anim.gif", "clip.mp4", "photo.jpg"]
    assert open_clip((out / "clip.mp4").read_bytes()).info.frames == 4
    with Image.open(out / "anim.gif") as gif:  # tiny weights: identical frames may merge
        assert (gif.format, gif.width) == ("GIF", 64)


async def test_progress_streams_lines_then_the_clip(torchserve, http):
    import base64
    import json

    mp4 = cs.video(40, fps=10, width=64, height=48)
    lines: list[dict] = []
    async with http.post(torchserve.predictions_url(), headers=torchserve.auth(),
                         data=form(content=mp4, style_id="candy", size="64",
                                   progress="true")) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-ndjson"
        buffer = b""
        async for chunk in resp.content.iter_any():
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            lines += [json.loads(line) for line in done if line]
    progress, final = lines[:-1], lines[-1]
    assert progress and all(p["total"] == 40 for p in progress)
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
    assert final["status"] == 200 and final["content_type"] == "video/mp4"
    assert open_clip(base64.b64decode(final["body"])).info.frames == 40

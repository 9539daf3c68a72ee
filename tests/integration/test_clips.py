"""Clips through a real TorchServe (issue 14): a GIF and a video as ``content`` come back
encoded with their Content-Type; a clip over the limits is a 413 JSON; a clip cancelled by a
second request stops on the server (``msgnet_clip`` registered beside ``msgnet``)."""

from __future__ import annotations

import aiohttp
import pytest
from PIL import Image

from fakes import clips as cs
from msgnet.animation.decode import open_clip

from .helpers import form, ndjson_lines, post
from .servers import clip_model_registered

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

    mp4 = cs.video(40, fps=10, width=64, height=48)
    lines: list[dict] = []
    async with http.post(torchserve.predictions_url(), headers=torchserve.auth(),
                         data=form(content=mp4, style_id="candy", size="64",
                                   progress="true")) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-ndjson"
        lines += [item async for item in ndjson_lines(resp)]
    progress, final = lines[:-1], lines[-1]
    assert progress and all(p["total"] == 40 for p in progress)
    assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
    assert final["status"] == 200 and final["content_type"] == "video/mp4"
    assert open_clip(base64.b64decode(final["body"])).info.frames == 40


# --- a clip cancelled on the server ----------------------------------------------------------

@pytest.fixture(scope="module")
def clip_model(torchserve):
    with clip_model_registered(torchserve) as url:
        yield url


async def test_a_cancelled_clip_stops_on_the_server_and_the_worker_serves_the_next(
        torchserve, clip_model, http):
    """A long clip on the clip model with a cancel_token; once its first progress line is
    in, a second request (``cancel=<token>`` to the photo model, the other worker) records the
    cancel, and the clip's stream ends with the ``cancelled`` line after a chunk or two, not
    after its 210 frames. The clip worker then serves the next clip at once."""
    import asyncio
    import re
    import time

    token = "itest_cancel-" + "0123456789"
    frames = 210  # 14 s at 15 fps: minutes of work at 96 px on the 2 busy cores here
    mp4 = cs.video(frames, fps=15, width=128, height=96)
    auth = torchserve.auth()
    lines: list[tuple[float, dict]] = []
    first_line = asyncio.Event()

    async def stream() -> None:
        async with http.post(clip_model, headers=auth,
                             data=form(content=mp4, style_id="candy", size="96",
                                       progress="true", cancel_token=token)) as resp:
            assert resp.status == 200, await resp.read()
            assert resp.content_type == "application/x-ndjson"
            async for item in ndjson_lines(resp):
                lines.append((time.monotonic(), item))
                first_line.set()

    started = time.monotonic()
    streaming = asyncio.create_task(stream())
    try:
        await asyncio.wait_for(first_line.wait(), 60)
        seen = lines[-1][1]
        assert seen.get("done", 0) < frames, seen  # still running when cancelled
        reply = await post(http, torchserve.predictions_url(), auth,
                           data=form(cancel=token))
        cancelled_at = time.monotonic()
        assert reply.status == 200, reply.body[:300]
        assert reply.json() == {"cancelled": token}
        await asyncio.wait_for(streaming, 60)
    finally:
        streaming.cancel()
    ended_at, final = lines[-1]
    assert (final["status"], final["code"]) == (409, "cancelled"), final
    stopped = int(re.search(r"after (\d+) of (\d+) frames", final["message"]).group(1))
    progress = [item["done"] for _, item in lines[:-1]]
    assert progress and max(progress) <= stopped < frames // 2, (progress, final)
    # after the cancel at most the chunk in flight and one more ran (8 frames each)
    per_frame = (ended_at - started) / max(stopped, 1)
    assert ended_at - cancelled_at < 16 * per_frame + 5.0, (ended_at - cancelled_at, per_frame)
    folder = torchserve.tmp / "msgnet-cancel"  # both workers' TMPDIR: one shared folder
    assert folder.is_dir() and not (folder / token).exists()  # the clip worker removed it

    started = time.monotonic()
    gif = cs.animation("GIF", 4, 64, 48)
    reply = await post(http, clip_model, auth, data=form(content=gif, style_id="candy",
                                                         size="64"))
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/gif"
    assert reply.headers["X-Msgnet-Clip"].startswith("frames=4;")
    print(f"cancelled after {stopped} of {frames} frames, "
          f"{ended_at - cancelled_at:.2f} s after the cancel's answer "
          f"({per_frame:.3f} s a frame); the next clip took {time.monotonic() - started:.2f} s")

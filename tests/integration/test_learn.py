"""Learning a style through a real TorchServe (issue 39): ``msgnet_learn`` learns a style from
an upload (tiny weights, a tiny random VGG, four generated photos, three steps) and streams
its progress; the photo model serves it by name to its owner, also after TorchServe has been
restarted; a bad name and a non-image are 4xx with a readable message, and the server keeps
serving. The server is the test's own (its environment names the store, the VGG file and the
photos), started on free ports like the session one."""

from __future__ import annotations

import time

import aiohttp
import pytest

from scripts import learn_model
from tsclient.private import PrivateTorchServe

from . import servers
from .helpers import encode, form, ndjson_lines, noise_image, post
from .servers import TIMINGS, start_learn_server

pytestmark = pytest.mark.integration
learn_server = servers.learn_server  # the module's server (a fixture)
OWNER = "itest-1"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


async def _stylize(server: PrivateTorchServe, http, name: str):
    photo = encode(noise_image(64, 48, seed=5), "PNG")
    return await post(http, server.predictions_url(), server.auth(),
                      data=form(content=photo, style_id=name, owner=OWNER, size="64"))


async def test_learn_then_stylize_by_name_across_a_restart(learn_server, http):
    server = learn_server
    learn_url = f"{server.endpoints.inference}/predictions/{learn_model.LEARN_MODEL}"
    style = encode(noise_image(96, 80, seed=11), "PNG")
    started = time.perf_counter()
    async with http.post(learn_url, headers=server.auth(),
                         data=form(action="learn", style=style, name="itest-ink",
                                   owner=OWNER, steps="3")) as resp:
        assert resp.status == 200, await resp.read()
        assert resp.content_type == "application/x-ndjson"
        lines = [item async for item in ndjson_lines(resp)]
    TIMINGS["learn a style through REST (3 steps)"] = time.perf_counter() - started
    assert lines[0] == {"step": 0, "steps": 3, "name": "itest-ink", "owner": OWNER}
    final = lines[-1]
    assert (final["status"], final["name"], final["owner"], final["steps"]) == (
        200, "itest-ink", OWNER, 3), final
    assert final["seconds"] > 0 and "style_ratio" in final and "content_ratio" in final

    reply = await _stylize(server, http, "itest-ink")
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/jpeg" and reply.image().size == (64, 48)
    listing = (await post(http, server.predictions_url(), server.auth(),
                          json={"action": "presets", "owner": OWNER})).json()
    assert listing["learned"]["styles"] == ["itest-ink"]

    # a bad name and a non-image: 4xx with a message a person can act on, nothing learned
    reply = await post(http, learn_url, server.auth(),
                       data=form(action="learn", style=style, name="../evil", owner=OWNER))
    assert reply.status == 400 and reply.json()["field"] == "name"
    assert "invalid style name" in reply.json()["message"]
    reply = await post(http, learn_url, server.auth(),
                       data=form(action="learn", style=b"not a picture at all", name="other",
                                 owner=OWNER))
    assert reply.status == 400 and reply.json()["code"] == "not_an_image"
    assert reply.json()["message"].startswith("style:")
    reply = await post(http, learn_url, server.auth(),
                       data=form(action="learn", style=style, name="itest-ink", owner=OWNER,
                                 steps="1"))
    assert reply.status == 409 and reply.json()["code"] == "name_exists"
    reply = await _stylize(server, http, "not-learned")
    assert reply.status == 404 and "itest-ink" in reply.json()["message"]

    # the store outlives the server: stop, start again, and the style is served by name
    server.stop()
    start_learn_server(server, "TorchServe with msgnet_learn: restart to READY")
    reply = await _stylize(server, http, "itest-ink")
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/jpeg"

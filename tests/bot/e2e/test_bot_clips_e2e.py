"""Clips end to end (issue 14): the real bot process, the fake Bot API and a real TorchServe
(tiny weights). The test server has no separate clip model, so TS_CLIP_MODEL points the bot's
clips at ``msgnet`` (the same handler), whose clip size is 96 px in the tests. Few scenarios,
each a whole conversation: a bot process costs seconds to start."""

from __future__ import annotations

import asyncio

import pytest

from fakes import clips as cs
from msgnet.animation.decode import open_clip

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WAIT = 90.0  # the machine is shared and TorchServe runs on 2 CPU cores
CLIP_ENV = {"TS_CLIP_MODEL": "msgnet", "STATUS_INTERVAL": "0.2"}


async def pick_candy(user) -> None:
    await user.send("/presets")
    gallery = await user.expect(lambda s: s.photo is not None, WAIT)
    await user.press_data(gallery, "pre:use:0:candy::")  # the button's text is translated


async def test_limits_first_then_a_video_comes_back_as_a_video_with_progress(run_bot, tg,
                                                                             proxy):
    await run_bot(**CLIP_ENV)
    user = tg.user(601, "Vid", "en")
    before = proxy.stylizations
    await user.send_clip("video", cs.video(4, fps=2, width=32, height=32), duration=40,
                         width=32, height=32)
    refusal = await user.expect(lambda s: "40 s long" in s.text, WAIT)
    assert "up to 15 s" in refusal.text and proxy.stylizations == before  # no work done

    video = cs.video(20, fps=10, width=96, height=64, audio="aac")
    await user.send_clip("video", video, duration=2, width=96, height=64)
    got = await user.expect(lambda s: "Got the clip" in s.text, WAIT)
    assert "up to 30 frames at 96 px" in got.text and "15 s" in got.text  # limits first
    tg.flood["sendVideo"] = [1]  # Telegram's flood control refuses the first upload (429)
    await pick_candy(user)
    sent = await user.expect(lambda s: s.method == "sendVideo", WAIT)
    videos = tg.calls("sendVideo", user.chat_id)
    assert [("retry_after" in e.result, "message_id" in e.result) for e in videos] == \
        [(True, False), (False, True)]  # sent again after retry_after, delivered once
    assert videos[1].at - videos[0].at >= 0.95
    kind, data = sent.clip
    info = open_clip(data).info
    assert kind == "video" and (info.frames, info.fps, info.audio) == (20, 10.0, "aac")
    assert (info.width, info.height) == (96, 64)  # the server's clip size
    assert sent.text == "Candy · 20 frames, 96x64 px"
    edits = [e.params.get("text", "") for e in tg.calls("editMessageText", user.chat_id)]
    assert any("of 20 frames done" in text for text in edits), edits
    assert "upload_video" in user.actions()


async def test_animation_video_note_gif_document_and_a_corrupt_clip(run_bot, tg):
    # four clips in seconds would hit the rate limit (a clip costs CLIP_RATE_COST=10 of 30)
    await run_bot(**CLIP_ENV, RATE_LIMIT_BURST="100")
    user = tg.user(602, "Anim", "ru")
    await pick_candy(user)  # the style first this time
    await user.expect(lambda s: "пришлите" in s.text.lower(), WAIT)
    await user.send_clip("animation", cs.video(6, fps=6, width=64, height=48), duration=1,
                         width=64, height=48)
    await user.expect(lambda s: "Клип получил" in s.text, WAIT)
    sent = await user.expect(lambda s: s.method == "sendAnimation", WAIT)
    assert sent.clip[0] == "animation" and open_clip(sent.clip[1]).info.frames == 6

    await user.send_clip("video_note", cs.video(5, fps=5, width=64, height=64), duration=1,
                         width=64, height=64)
    note = await user.expect(lambda s: s.method == "sendVideoNote", WAIT)
    assert open_clip(note.clip[1]).info.width == open_clip(note.clip[1]).info.height == 96

    gif = cs.animation("GIF", 4, 64, 48, durations=[100, 200, 100, 200])
    await user.send_document(gif, "funny.gif", "image/gif")
    back = await user.expect(lambda s: s.method == "sendAnimation", WAIT)
    assert back.clip[1][:6] == b"GIF89a"

    video = cs.video(10, fps=10, width=64, height=48)
    await user.send_clip("video", video[:len(video) // 2], duration=1, width=64, height=48)
    await user.expect(lambda s: "повреждён" in s.text and "Клип" in s.text, WAIT)


async def test_cancel_mid_clip(run_bot, tg, proxy):
    await run_bot(**CLIP_ENV)
    user = tg.user(606, "Stop", "en")
    await user.send_clip("video", cs.video(10, fps=10, width=64, height=48), duration=1,
                         width=64, height=48)
    await user.expect(lambda s: "Got the clip" in s.text, WAIT)
    proxy.hold()  # the clip request stays in flight
    await pick_candy(user)
    status = await user.expect(lambda s: "Styling your clip" in s.text, WAIT)
    await asyncio.wait_for(proxy.held.wait(), WAIT)
    await user.send("/cancel")
    await user.expect_edit(status.message_id, lambda s: s.text == "❌ Cancelled.", WAIT)
    proxy.release()
    await user.send("/cancel")
    await user.expect(lambda s: "nothing to cancel" in s.text, WAIT)
    assert not [s for s in user.sent() if s.clip]

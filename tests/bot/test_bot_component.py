"""The whole bot in-process, polling the fake Bot API, against the scriptable fake
TorchServe: every error path a user can reach, the queue, cancellation, re-runs, shutdown,
webhook mode and metrics."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import pytest
from bot_helpers import bot_env, dims, jpeg, png
from PIL import Image

from bot.app import create_webhook_app, run_webhook
from bot.config import load_settings
from bot.services.status import StatusMessage
from fakes.torchserve import key_file


async def ready(user, content=(300, 200)) -> None:
    """The user has sent a content photo (the bot acknowledged it)."""
    await user.send_photo(jpeg(*content))
    await user.expect(lambda s: "Got the photo" in s.text)


async def pick_preset(user, name: str = "candy"):
    """Open the gallery and use the preset ``name`` (paging to it)."""
    await user.send("/presets")
    gallery = await user.expect(lambda s: s.photo is not None)
    def use_button(sent) -> str | None:
        return next((d for _, d in sent.buttons
                     if d.startswith("pre:use:") and d.split(":")[3] == name), None)

    for _ in range(20):
        if use_button(gallery):
            break
        await user.press(gallery, "▶️")
        gallery = await user.expect_edit(gallery.message_id,
                                         lambda s, n=gallery.text: s.text != n)
    await user.press_data(gallery, use_button(gallery))
    return gallery


def results(user) -> list[bytes]:
    """The stylized photos the user got (not gallery previews)."""
    return [s.photo for s in user.sent() if s.method == "sendPhoto" and " px" in s.text]


async def test_gallery_pages_in_place_with_previews_from_the_server(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(101)
    await user.send("🎨 Styles")
    gallery = await user.expect(lambda s: s.photo is not None)
    assert gallery.text == "🎨 Candy (1 of 12)" and dims(gallery.photo) == (64, 64)
    assert len(gallery.buttons) == 3 + 9 + 1  # prev/use/next, a page of names, My styles
    await user.press(gallery, "La Muse")  # a button per name, titled (the artist left out)
    page = await user.expect_edit(gallery.message_id, lambda s: "La Muse — Picasso" in s.text)
    assert "(no preview)" in page.text and dims(page.photo) == (160, 160)
    await user.press(page, "▶️")
    page2 = await user.expect_edit(gallery.message_id, lambda s: "composition" in s.text)
    assert "• composition •" in [b[0] for b in page2.buttons]  # the second page of names
    await user.press(page2, "◀️")
    await user.expect_edit(gallery.message_id,
                           lambda s: "La Muse — Picasso (9 of 12)" in s.text)
    await user.press(page, "• La Muse •")  # a press that changes nothing must not break
    # paging back to candy re-sends its preview by file id instead of uploading it again
    await user.press(page, "Candy")
    await user.expect_edit(gallery.message_id, lambda s: "Candy (1 of" in s.text)
    assert sum(1 for r in fts.requests if r.get("action") == "preview") == 1
    await user.press(page, "Use “Candy”")
    assert "Style “Candy” chosen" in (await user.expect()).text


async def test_preset_result_has_the_requested_size_and_a_full_quality_file(make_bot, tg,
                                                                              fts):
    await make_bot(polling=True)
    user = tg.user(102)
    await ready(user)
    await pick_preset(user, "mosaic")
    status = await user.expect(lambda s: "Styling" in s.text or "queue" in s.text)
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert result.text == "Style: Mosaic · 512×341 px" and dims(result.photo) == (512, 341)
    await user.expect_deleted(status.message_id)  # the status goes away after the result
    await user.press(result, "Full-quality")
    doc = await user.expect(lambda s: s.method == "sendDocument")
    assert doc.document == result.photo and doc.file_name == "styled_512px.jpg"
    # a size button under the result ("More") re-runs at that size without a new upload
    await user.press(result, "ctl:more")
    await user.expect_edit(result.message_id, lambda s: "📐 1024" in str(s.buttons))
    await user.press(result, "📐 1024")
    bigger = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert dims(bigger.photo) == (1024, 683)
    assert [s["size"] for s in fts.stylized] == [512, 1024]


async def test_full_quality_file_is_remade_when_no_longer_cached(make_bot, tg, fts):
    await make_bot(polling=True, RESULT_CACHE_PER_USER="0")
    user = tg.user(103)
    await ready(user)
    await pick_preset(user)
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    await user.press(result, "Full-quality")
    await user.expect(lambda s: "making it again" in s.text)
    doc = await user.expect(lambda s: s.method == "sendDocument")
    assert dims(doc.document) == (512, 341) and len(fts.stylized) == 2


async def test_tests_command_runs_every_server_size(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(104)
    await user.send_photo(jpeg(90, 60))
    await user.send_photo(png(20, 20))
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    await user.send("/tests")
    await user.expect(lambda s: s.text.startswith("Done: the same picture"), timeout=30)
    sizes = [max(dims(p)) for p in results(user)[1:]]
    assert sizes == [256, 512, 768, 1024, 1536, 2048]


async def test_corrupt_image_is_explained_and_forgotten(make_bot, tg, fts):
    h = await make_bot(polling=True)
    user = tg.user(105, "Ира", "ru")
    await user.send_document(jpeg(200, 200)[:400], "broken.jpg", "image/jpeg")
    await user.expect(lambda s: "Фото получил" in s.text)
    await pick_preset(user)
    error = await user.expect(lambda s: "повреждено" in s.text)
    assert "(фото)" in error.text
    await user.send("/result")
    assert "Сначала пришлите фото" in (await user.expect()).text  # the broken one is gone
    assert h.services.queue.get(user.id) is None


async def test_an_iphone_heic_document_is_stylized(make_bot, tg, fts):
    """A .heic file (what iPhones save) sent as a document reaches the server unchanged, and
    the server (pillow-heif) stylizes it."""
    pillow_heif = pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    try:
        pillow_heif.from_pillow(Image.new("RGB", (120, 80), (30, 90, 200))).save(
            buf, format="HEIF")
    except Exception as exc:
        pytest.skip(f"pillow_heif cannot encode HEIC here: {exc}")
    heic = buf.getvalue()
    await make_bot(polling=True)
    user = tg.user(1092)
    await user.send_document(heic, "IMG_0001.HEIC", "image/heic")
    await user.expect(lambda s: "Got the photo" in s.text)
    await pick_preset(user)
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert dims(result.photo) == (512, 341)  # 120 x 80 at the default 512 px
    assert fts.stylized[-1]["content"] == (120, 80)


async def test_a_heic_the_server_cannot_read_gets_the_iphone_tip(make_bot, tg, fts):
    """A server without pillow-heif answers not_an_image naming HEIC (msgnet/imageio/):
    the user gets the iPhone setting, not a generic "not an image"."""
    await make_bot(polling=True)
    user = tg.user(1093)
    await ready(user)
    fts.script.fail = [(400, {"code": "not_an_image", "field": "content", "message":
                              "content: HEIC/HEIF photos are not supported by this server "
                              "(it lacks pillow-heif). Send a JPEG, PNG or WebP photo. (On an "
                              "iPhone: Settings > Camera > Formats > Most Compatible.)"})]
    await pick_preset(user)
    error = await user.expect(lambda s: "HEIC" in s.text)
    assert error.text.startswith("Your photo is an iPhone HEIC") and "Most Compatible" in error.text


async def test_busy_server_is_retried_then_reported(make_bot, tg, fts):
    await make_bot(polling=True, TS_RETRIES="3")
    user = tg.user(106)
    await ready(user)
    fts.script.fail = [(503, {"code": 503, "message": "Model is overloaded"})] * 2
    await pick_preset(user)
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)  # 2 x 503, then ok
    fts.script.fail = [(503, {"code": 503, "message": "Model is overloaded"})] * 3
    await user.send("/result")
    error = await user.expect(lambda s: "busy" in s.text)
    assert "tried 3 times" in error.text


async def test_server_down_is_reported_and_the_bot_keeps_working(make_bot, tg, fts):
    await make_bot(polling=True, TS_RETRIES="2")
    user = tg.user(107)
    await ready(user)
    await pick_preset(user)
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    await fts.close()
    await user.send("/result")
    error = await user.expect(lambda s: "unavailable" in s.text)
    assert "tried 2 times" in error.text and "/result" in error.text
    await user.send("/help")
    assert "How it works" in (await user.expect()).text


async def test_an_expired_key_is_reported_as_one_and_a_renewed_key_is_picked_up(
        make_bot, tg, fts, tmp_path):
    """Issue 41: TorchServe answers an expired key with 400 InvalidKeyException, which
    reached users as "Something went wrong". The bot reads its key file again; when that
    holds no newer key, the user is told the key was refused, and once the file has the
    renewed key the same /result works."""
    path = tmp_path / "key_file.json"
    key_file(path, "inference-key")
    await make_bot(polling=True, TS_INFERENCE_KEY="", TS_KEY_FILE=str(path))
    user = tg.user(1091, "Ann", "en")
    await ready(user)
    await pick_preset(user)
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    fts.key = "renewed-key"  # the key expired and was renewed, but not in our file
    await user.send("/result")
    error = await user.expect(lambda s: "access key" in s.text)
    assert "expired" in error.text and "Something went wrong" not in error.text
    assert fts.refused == ["inference-key"]  # read again, still the same key: sent once
    key_file(path, "renewed-key")
    await user.send("/result")
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)


async def test_timeout_is_reported(make_bot, tg, fts):
    await make_bot(polling=True, TS_TIMEOUT="0.5")
    user = tg.user(108)
    await ready(user)
    fts.script.gate = asyncio.Event()
    await pick_preset(user)
    assert "took too long" in (await user.expect(lambda s: "took too long" in s.text)).text


async def test_file_too_big_for_getfile_is_explained(make_bot, tg, fts):
    # a local Bot API server allows larger files; the fake (like api.telegram.org) refuses
    await make_bot(polling=True, MAX_FILE_MB="50")
    user = tg.user(109)
    await user.send_document(jpeg(64, 64), "huge.jpg", "image/jpeg",
                             declared_size=25 * 2**20)
    await user.expect(lambda s: "Got the photo" in s.text)
    await pick_preset(user)
    error = await user.expect(lambda s: "too large for bots to download" in s.text)
    assert "20 MB" not in error.text and fts.stylized == []


async def test_unknown_preset_from_the_server(make_bot, tg, fts):
    await make_bot(polling=True, PRESETS_TTL="0")
    user = tg.user(110)
    await ready(user)
    gallery_task = asyncio.create_task(pick_preset(user, "udnie"))
    await gallery_task
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    fts.presets = ("candy",)  # the server was redeployed with fewer presets
    await user.send("/result")
    error = await user.expect(lambda s: "no longer available" in s.text)
    assert "“Udnie — Picabia”" in error.text  # the title, as the gallery showed it


async def test_cancel_a_running_job_with_the_button(make_bot, tg, fts):
    h = await make_bot(polling=True)
    user = tg.user(111)
    await ready(user)
    fts.script.gate = asyncio.Event()
    await pick_preset(user)
    status = await user.expect(lambda s: "Styling" in s.text)
    await asyncio.wait_for(fts.started.wait(), 10)
    query = await user.press(status, "Cancel")
    assert (await user.callback_answer(query))["text"] == "❌ Cancelled."
    await user.expect_edit(status.message_id, lambda s: s.text == "❌ Cancelled.")
    fts.script.gate.set()
    assert h.services.queue.get(user.id) is None
    await user.send("/help")  # the bot answers after the cancelled job...
    await user.expect(lambda s: "How it works" in s.text)
    assert results(user) == []  # ...and the cancelled result never arrives


async def test_queue_positions_and_cancel_of_a_queued_job(make_bot, tg, fts):
    h = await make_bot(polling=True, MAX_CONCURRENT_JOBS="1")
    users = [tg.user(120 + i) for i in range(3)]
    for user in users:
        await ready(user)
    fts.script.gate = asyncio.Event()
    await pick_preset(users[0])
    await asyncio.wait_for(fts.started.wait(), 10)
    await pick_preset(users[1])
    second = await users[1].expect(lambda s: "number 1 in the queue" in s.text)
    await pick_preset(users[2])
    third = await users[2].expect(lambda s: "number 2 in the queue" in s.text)
    await users[1].send("/cancel")
    await users[1].expect_edit(second.message_id, lambda s: s.text == "❌ Cancelled.")
    await users[2].expect_edit(third.message_id, lambda s: "number 1 in the queue" in s.text)
    fts.script.gate.set()
    await users[0].expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    await users[2].expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert results(users[1]) == [] and len(fts.stylized) == 2
    assert h.services.queue.waiting == 0
    await users[1].send("/cancel")
    assert "nothing to cancel" in (await users[1].expect()).text


async def test_one_job_per_user(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(130)
    await ready(user)
    fts.script.gate = asyncio.Event()
    await pick_preset(user)
    await asyncio.wait_for(fts.started.wait(), 10)
    await user.send("/result")
    assert "already have a job" in (await user.expect(lambda s: "already" in s.text)).text
    fts.script.gate.set()
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert len(fts.stylized) == 1


async def test_status_edits_are_throttled(make_bot, tg):
    h = await make_bot()
    user = tg.user(140)
    status = StatusMessage(h.bot, user.chat_id, min_interval=0.3)
    await status.set("hidden: set before the message exists")
    await status.show("ignored: the newest text wins")
    first = await user.expect()
    assert first.text == "hidden: set before the message exists"
    for position in (4, 3, 2, 1):  # the queue moves quickly
        await status.set(f"position {position}")
    await user.expect_edit(first.message_id, lambda s: s.text == "position 1")
    await status.set("position 1")  # unchanged: no edit
    await status.set("running")
    await user.expect_edit(first.message_id, lambda s: s.text == "running")
    edits = tg.calls("editMessageText", user.chat_id)
    assert [e.params["text"] for e in edits] == ["position 1", "running"]
    assert edits[1].at - edits[0].at >= 0.29
    assert await status.close("done") and first.text == "done" and first.buttons == []
    await status.set("after close")
    assert len(tg.calls("editMessageText", user.chat_id)) == 3


async def test_graceful_shutdown_tells_waiting_and_running_users(make_bot, tg, fts):
    h = await make_bot(polling=True, MAX_CONCURRENT_JOBS="1", SHUTDOWN_GRACE="0.3")
    running, waiting = tg.user(150), tg.user(151)
    for user in (running, waiting):
        await ready(user)
    fts.script.gate = asyncio.Event()
    await pick_preset(running)
    await asyncio.wait_for(fts.started.wait(), 10)
    await pick_preset(waiting)
    await waiting.expect(lambda s: "queue" in s.text)
    await h.stop()
    for user in (running, waiting):
        told = await user.expect(lambda s: "restarting" in s.text)
        # memory storage: the photos are gone after a restart, and the bot says so
        assert "kept" not in told.text and "again" in told.text
    h.polling = None
    h.stop = _noop  # already stopped


async def _noop() -> None:
    return None


async def test_webhook_mode_checks_the_secret_token(make_bot, tg, fts, unused_tcp_port):
    h = await make_bot(WEBHOOK_URL=f"http://127.0.0.1:{unused_tcp_port}",
                       WEBHOOK_SECRET="s3cret-token", WEBHOOK_PORT=str(unused_tcp_port))
    app = create_webhook_app(h.settings, h.bot, h.dp)
    app.on_startup.clear()  # the dispatcher was started by the fixture already
    app.on_shutdown.clear()
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        await h.bot.set_webhook(h.settings.webhook_url + h.settings.webhook_path,
                                secret_token="s3cret-token")
        user = tg.user(160)
        await user.send("/help")  # delivered by POST with the secret header
        assert "How it works" in (await user.expect()).text
        async with aiohttp.ClientSession() as session:
            url = h.settings.webhook_url + h.settings.webhook_path
            async with session.post(url, json={"update_id": 99}, headers={
                    "X-Telegram-Bot-Api-Secret-Token": "wrong"}) as resp:
                assert resp.status == 401
        assert tg.webhook["deliveries"] == [200]
    finally:
        await runner.cleanup()


async def test_metrics_endpoint(make_bot, tg, fts, unused_tcp_port):
    await make_bot(polling=True, METRICS_PORT=str(unused_tcp_port))
    user = tg.user(170)
    await ready(user)
    await pick_preset(user)
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{unused_tcp_port}/metrics") as resp:
            text = await resp.text()
    assert "bot_jobs_started_total 1.0" in text
    assert 'bot_jobs_finished_total{outcome="done"} 1.0' in text
    assert "bot_job_latency_seconds_count 1.0" in text


async def test_webhook_mode_end_to_end_with_a_graceful_shutdown(tg, fts, unused_tcp_port):
    """run_webhook as ``python -m bot`` runs it: it registers the webhook with its secret once
    listening, gets updates by POST, and on shutdown tells the user whose job it cancels."""
    port = unused_tcp_port
    settings = load_settings(bot_env(tg.api_url, fts.url, WEBHOOK_URL=f"http://127.0.0.1:{port}",
                                     WEBHOOK_SECRET="s3cret-token", WEBHOOK_PORT=str(port),
                                     SHUTDOWN_GRACE="0.3"), dotenv=None)
    stop = asyncio.Event()
    serving = asyncio.create_task(run_webhook(settings, stop))
    try:
        await tg.wait_event(lambda e: e.method == "setWebhook", 30)
        assert tg.webhook["url"] == f"http://127.0.0.1:{port}/telegram/webhook"
        assert tg.webhook["secret_token"] == "s3cret-token"
        user = tg.user(165)
        await ready(user)
        fts.script.gate = asyncio.Event()  # the job stays running inside TorchServe
        await pick_preset(user)
        await asyncio.wait_for(fts.started.wait(), 10)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 30)
    assert "restarting" in (await user.expect(lambda s: "restarting" in s.text)).text
    assert tg.webhook["deliveries"] and set(tg.webhook["deliveries"]) == {200}
    assert not tg.calls("getUpdates")

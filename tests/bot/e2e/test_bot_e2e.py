"""End to end: the real bot process (``python -m bot``) against the fake Telegram Bot API
and a real TorchServe (tiny seeded weights; presets candy, mosaic, udnie; a preview for candy
only), reached through a proxy the tests can close and hold."""

from __future__ import annotations

import asyncio

import pytest
from bot_helpers import dims, jpeg, png
from e2e_helpers import WAIT, results, use_preset

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_photo_and_preset_give_a_jpeg_of_the_requested_size(run_bot, tg, proxy):
    await run_bot()
    user = tg.user(501, "Alice", "en")
    await user.send("/start")
    await user.expect(lambda s: s.text.startswith("Hi, Alice"), WAIT)
    await user.send_photo(jpeg(320, 240))
    await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    await user.send("/size")
    menu = await user.expect(lambda s: "Output size" in s.text, WAIT)
    assert "768" in [t for t, _ in menu.buttons]  # sizes come from the real server
    await user.press(menu, "768")
    await user.expect_edit(menu.message_id, lambda s: "768" in s.text, WAIT)

    await user.send("/presets")
    gallery = await user.expect(lambda s: s.photo is not None, WAIT)
    assert gallery.text == "🎨 Candy (1 of 3)" and dims(gallery.photo) == (32, 32)
    await user.press(gallery, "▶️")
    page = await user.expect_edit(gallery.message_id, lambda s: "Mosaic" in s.text, WAIT)
    assert "(no preview)" in page.text
    await user.press(page, "Use “Mosaic”")

    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    assert result.photo[:3] == b"\xff\xd8\xff" and dims(result.photo) == (768, 576)
    assert result.text == "Style: Mosaic · 768×576 px"
    assert "upload_photo" in user.actions()
    await user.press(result, "Full-quality")
    document = await user.expect(lambda s: s.method == "sendDocument", WAIT)
    assert document.document == result.photo


async def test_album_is_content_then_style(run_bot, tg):
    await run_bot()
    user = tg.user(502, "Пётр", "ru")
    await user.send_album([("photo", jpeg(300, 200)),
                           ("document:style.png:image/png", png(64, 96))])
    await user.expect(lambda s: "Получил фото и стиль" in s.text, WAIT)
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    assert dims(result.photo) == (512, 341)  # the content's shape, not the style's
    assert result.text.startswith("Стиль: ваша картинка")


async def test_two_users_at_once_get_their_own_pictures(run_bot, tg):
    await run_bot()
    wide, tall = tg.user(503, "Wide"), tg.user(504, "Tall")
    await asyncio.gather(wide.send_photo(jpeg(300, 200)), tall.send_photo(jpeg(200, 300)))
    await asyncio.gather(wide.expect(lambda s: "Got the photo" in s.text, WAIT),
                         tall.expect(lambda s: "Got the photo" in s.text, WAIT))
    await asyncio.gather(wide.send_photo(png(50, 50, (250, 200, 0))),
                         tall.send_photo(png(40, 40, (0, 90, 250))))
    got_wide, got_tall = await asyncio.gather(
        wide.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT),
        tall.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT))
    assert dims(got_wide.photo) == (512, 341) and dims(got_tall.photo) == (341, 512)
    assert len(results(wide)) == len(results(tall)) == 1
    assert got_wide.photo != got_tall.photo


async def test_pdf_and_truncated_jpeg_get_clear_messages(run_bot, tg):
    await run_bot()
    user = tg.user(505)
    await user.send_document(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "report.pdf",
                             "application/pdf")
    refused = await user.expect(lambda s: "not an image" in s.text, WAIT)
    assert "report.pdf" in refused.text
    whole = jpeg(400, 300)
    await user.send_document(whole[: len(whole) // 3], "cut.jpg", "image/jpeg")
    await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    await use_preset(user, "candy")
    error = await user.expect(lambda s: "damaged or incomplete" in s.text, WAIT)
    assert "Your photo" in error.text
    assert results(user) == []


async def test_torchserve_down_then_back(run_bot, tg, proxy):
    bot = await run_bot()
    user = tg.user(506)
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    await use_preset(user, "udnie")
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)

    proxy.hold()  # the next stylization is inside "TorchServe" when it stops
    await user.send("/result")
    await asyncio.wait_for(proxy.held.wait(), WAIT)
    await proxy.down()  # TorchServe stops mid-job: the connection drops, then is refused
    proxy.release()
    error = await user.expect(lambda s: "unavailable" in s.text, WAIT)
    assert "tried 2 times" in error.text
    await user.send("/result")  # while it is down, a new job is told the same
    await user.expect(lambda s: "unavailable" in s.text, WAIT)
    await user.send("/help")
    await user.expect(lambda s: "How it works" in s.text, WAIT)
    assert bot.alive and len(results(user)) == 1

    await proxy.up()  # and comes back
    await user.send("/result")
    again = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    assert dims(again.photo) == (512, 341) and len(results(user)) == 2


async def test_cancel_stops_a_queued_job(run_bot, tg, proxy):
    await run_bot(MAX_CONCURRENT_JOBS="1")
    first, second = tg.user(507), tg.user(508)
    for user in (first, second):
        await user.send_photo(jpeg(300, 200))
        await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    proxy.hold()  # the first job stays "running" inside TorchServe's reach
    await use_preset(first, "candy")
    await asyncio.wait_for(proxy.held.wait(), WAIT)
    await use_preset(second, "candy")
    queued = await second.expect(lambda s: "number 1 in the queue" in s.text, WAIT)
    assert "Cancel" in queued.buttons[0][0]  # a button does the same as the command
    await second.send("/cancel")
    await second.expect_edit(queued.message_id, lambda s: s.text == "❌ Cancelled.", WAIT)
    proxy.release()
    await first.expect(lambda s: s.method == "sendPhoto" and " px" in s.text, WAIT)
    await second.send("/cancel")  # by now the queue is empty: nothing left to cancel
    await second.expect(lambda s: "nothing to cancel" in s.text, WAIT)
    assert results(second) == [] and proxy.stylizations == 1

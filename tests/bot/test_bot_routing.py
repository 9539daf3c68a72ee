"""Routing and per-user state, driven with ``Dispatcher.feed_update`` (no polling): the real
routers, middlewares and FSM, the fake Bot API for what the bot sends and the fake
TorchServe for stylizations."""

from __future__ import annotations

import asyncio

from aiogram.fsm.storage.base import StorageKey
from bot_helpers import dims, jpeg, png

from bot.keyboards import RoleCB
from fakes.telegram import FakeUser, public


async def state_of(h, user: FakeUser) -> dict:
    key = StorageKey(bot_id=h.bot.id, chat_id=user.chat_id, user_id=user.id)
    return await h.dp.storage.get_data(key)


async def press(h, user: FakeUser, sent, data: str) -> str:
    """Feed a callback query for a button of ``sent``; returns the query id."""
    query_id = f"q{len(h.tg.callback_answers) + 1}"
    h.tg.callback_answers[query_id] = {"chat": user.chat_id}
    await h.feed(user, callback_query={"id": query_id, "from": user.info, "chat_instance": "x",
                                       "message": public(sent.message), "data": data})
    return query_id


async def send(h, user: FakeUser, text: str) -> None:
    message = user._message(text=text, **({"entities": [
        {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}
        if text.startswith("/") else {}))
    await h.feed(user, message=message)


async def test_start_answers_in_the_users_language_with_the_reply_keyboard(make_bot, tg):
    h = await make_bot()
    ivan, ann = tg.user(11, "Иван", "ru"), tg.user(12, "Ann", "en-US")
    await send(h, ivan, "/start")
    await send(h, ann, "/start")
    ru, en = await ivan.expect(), await ann.expect()
    assert ru.text.startswith("Привет, Иван!") and "🎨 Стили" in ru.reply_keyboard
    assert en.text.startswith("Hi, Ann!") and "🎨 Styles" in en.reply_keyboard
    assert set(tg.commands) == {"", "ru"}  # the command menu in both languages
    for menu in tg.commands.values():  # short: the legacy /tests and the rest are left out
        assert [c["command"] for c in menu] == ["start", "presets", "mystyles", "restart",
                                                 "language", "help"]
    assert en.reply_keyboard == ["🎨 Styles", "⭐ My styles", "🔄 Start over", "❓ Help"]


async def test_unknown_command_text_and_stickers_get_clear_answers(make_bot, tg):
    h = await make_bot()
    user = tg.user(13)
    await send(h, user, "/frobnicate now")
    assert "/frobnicate" in (await user.expect()).text
    await send(h, user, "hello")
    assert "Send me a photo" in (await user.expect()).text
    await h.feed(user, message=user._message(sticker={
        "file_id": "S", "file_unique_id": "s", "type": "regular", "width": 512, "height": 512,
        "is_animated": False, "is_video": False}))
    assert "a GIF, a video or a video note" in (await user.expect()).text


async def test_photo_then_style_photo_starts_the_job(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(14)
    await h.feed(user, message=user.photo_message(jpeg(300, 200)))
    got = await user.expect(lambda s: "Got the photo" in s.text)
    assert [b[0] for b in got.buttons] == ["↔️ No, it's the style"]  # the swap button
    gallery = await user.expect(lambda s: s.photo is not None)  # the short path: the gallery
    assert gallery.text.startswith("🎨 Candy (1 of") and gallery.message_id > got.message_id
    await h.feed(user, message=user.photo_message(png(40, 60)))
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert dims(result.photo) == (512, 341)  # the content's shape at the default size
    assert fts.stylized[-1]["content"] == (300, 200) and fts.stylized[-1]["style"] == "image"
    data = await state_of(h, user)
    assert data["content"]["kind"] == data["style"]["kind"] == "photo"
    assert "upload_photo" in user.actions()


async def test_captions_give_roles_in_any_order(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(15, "Оля", "ru")
    await h.feed(user, message=user.photo_message(png(40, 60), caption="это стиль"))
    assert "Стиль получил" in (await user.expect()).text
    await h.feed(user, message=user.document_message(jpeg(200, 300), "cat.jpg", "image/jpeg"))
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert dims(result.photo) == (341, 512) and fts.stylized[-1]["content"] == (200, 300)
    assert result.text.startswith("Стиль: ваша картинка")


async def test_a_third_image_asks_which_it_is(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(16)
    await h.feed(user, message=user.photo_message(jpeg(300, 200)))
    await h.feed(user, message=user.photo_message(png(40, 40)))
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    await h.feed(user, message=user.photo_message(png(50, 50, (0, 0, 255))))
    question = await user.expect(lambda s: "photo to stylize or the style" in s.text)
    style = RoleCB(role="style", mode="ask").pack()
    await press(h, user, question, style)
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert len(fts.stylized) == 2 and (await state_of(h, user))["pending"] is None


async def test_swap_button_turns_a_guessed_photo_into_the_style(make_bot, tg):
    h = await make_bot()
    user = tg.user(17)
    await h.feed(user, message=user.photo_message(png(40, 60)))
    got = await user.expect(lambda s: "Got the photo" in s.text)
    data = next(d for t, d in got.buttons if "style" in t)
    query = await press(h, user, got, data)
    await user.expect(lambda s: "Got the style image" in s.text)
    state = await state_of(h, user)
    assert state["content"] is None and state["style"]["kind"] == "photo"
    assert tg.callback_answers[query].get("answered")


async def test_content_and_style_commands_set_the_next_role(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(18)
    await send(h, user, "/style")
    await user.expect(lambda s: "next image will be the style" in s.text)
    await h.feed(user, message=user.photo_message(png(40, 40)))
    assert "Got the style image" in (await user.expect()).text
    await send(h, user, "/content")
    await h.feed(user, message=user.photo_message(jpeg(120, 80)))
    await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert fts.stylized[-1]["content"] == (120, 80)


async def test_album_of_two_is_content_then_style(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(19)
    group = "album-1"
    first = user.photo_message(jpeg(300, 200), media_group_id=group)
    second = user.photo_message(png(30, 90), media_group_id=group)
    await asyncio.gather(h.feed(user, message=first), h.feed(user, message=second))
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert fts.stylized == [{"size": 512, "style": "image", "content": (300, 200)}]
    assert dims(result.photo) == (512, 341)
    assert sum(1 for s in user.sent() if "Got the photo and the style" in s.text) == 1


async def test_album_of_three_is_refused(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(20)
    messages = [user.photo_message(jpeg(30, 20), media_group_id="g3") for _ in range(3)]
    await asyncio.gather(*(h.feed(user, message=m) for m in messages))
    assert "exactly two images" in (await user.expect()).text and fts.stylized == []


async def test_pdf_and_oversized_files_are_refused_at_once(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(21)
    await h.feed(user, message=user.document_message(b"%PDF-1.4", "report.pdf",
                                                     "application/pdf"))
    assert "“report.pdf” is not an image (application/pdf)" in (await user.expect()).text
    await h.feed(user, message=user.document_message(b"x", "huge.png", "image/png",
                                                     declared_size=30 * 2**20))
    assert "up to 20 MB" in (await user.expect()).text
    assert (await state_of(h, user)).get("content") is None and fts.requests == []


async def test_language_switch_is_remembered(make_bot, tg):
    h = await make_bot()
    user = tg.user(22, "Bob", "en")
    await send(h, user, "/language")
    menu = await user.expect()
    data = next(d for t, d in menu.buttons if t == "Русский")
    await press(h, user, menu, data)
    switched = await user.expect(lambda s: "по-русски" in s.text)
    assert "🎨 Стили" in switched.reply_keyboard
    await send(h, user, "/help")
    assert "Как это работает" in (await user.expect()).text


async def test_size_menu_comes_from_the_server_and_the_choice_is_used(make_bot, tg, fts):
    h = await make_bot()
    user = tg.user(23)
    await send(h, user, "/size")
    menu = await user.expect()
    assert [t for t, _ in menu.buttons] == ["256", "• 512 •", "768", "1024", "1536", "2048"]
    data = next(d for t, d in menu.buttons if t == "768")
    await press(h, user, menu, data)
    assert (await state_of(h, user))["size"] == 768
    await h.feed(user, message=user.photo_message(jpeg(300, 200)))
    await h.feed(user, message=user.photo_message(png(40, 40)))
    result = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert dims(result.photo) == (768, 512)


async def test_restart_forgets_images_but_keeps_the_size(make_bot, tg):
    h = await make_bot()
    user = tg.user(24)
    await h.feed(user, message=user.photo_message(jpeg(30, 20)))
    await user.expect()
    await h.feed(user, message=user._message(text="🔄 Start over"))  # the keyboard button
    await user.expect(lambda s: "forgot your photos" in s.text)
    await send(h, user, "/result")
    assert "First send the photo" in (await user.expect()).text


async def test_allowlist_and_rate_limit(make_bot, tg):
    h = await make_bot(ALLOWED_USER_IDS="30", RATE_LIMIT_BURST="2", RATE_LIMIT_PER_MINUTE="1")
    stranger, member = tg.user(31, "Eve", "ru"), tg.user(30)
    await send(h, stranger, "/start")
    assert (await stranger.expect()).text == "Извините, это закрытый бот."
    for _ in range(4):
        await send(h, member, "/help")
    texts = [s.text for s in member.sent()]
    assert sum("How it works" in t for t in texts) == 2
    assert sum("too fast" in t for t in texts) == 1  # told once, not for every message
    # dropped button presses are still answered (else the app shows a spinner), silently
    # after the first notice
    queries = [await press(h, member, member.sent()[0], "size:512:0") for _ in range(2)]
    answers = [tg.callback_answers[q] for q in queries]
    assert all(a.get("answered") for a in answers) and answers[1]["text"] is None
    await send(h, stranger, "/help")
    query = await press(h, stranger, member.sent()[0], "size:512:0")
    assert tg.callback_answers[query].get("answered")
    assert len(stranger.sent()) == 1  # the notice is not repeated within its interval


async def test_results_too_large_for_a_photo_come_as_a_file_or_are_explained(make_bot, tg, fts):
    """sendPhoto takes 10 MB, sendDocument 50 MB: a bigger result goes as a file without a
    refused photo upload first, and one too big even for a file is explained."""
    h = await make_bot()
    user = tg.user(40)
    await h.feed(user, message=user.photo_message(jpeg(300, 200)))
    await user.expect(lambda s: "Got the photo" in s.text)
    fts.script.pad = 11 * 2**20
    await h.feed(user, message=user.photo_message(png(40, 40), caption="style"))
    document = await user.expect(lambda s: s.method == "sendDocument")
    assert document.text == "Full quality, 512×341 px" and len(document.document) > 11 * 2**20
    # no result upload doomed to be refused (the gallery after the photo is a photo)
    assert not [e for e in tg.calls("sendPhoto", user.chat_id)
                if " px" in (e.params.get("caption") or "")]
    await job_done(h, user)
    await press(h, user, document, next(d for t, d in document.buttons if "More" in t))
    assert "📐 768" in [text for text, _ in document.buttons]  # re-run at another size
    fts.script.pad = 51 * 2**20
    await press(h, user, document, next(d for t, d in document.buttons if t == "📐 768"))
    refused = await user.expect(lambda s: "too large for Telegram" in s.text)
    assert "51." in refused.text and "/size" in refused.text


async def job_done(h, user: FakeUser) -> None:
    """Wait until the user's job has ended (it closes its status message after the result)."""
    job = h.services.queue.get(user.id)
    if job is not None:
        await asyncio.wait_for(job.done.wait(), 10)


async def test_another_style_reruns_without_a_new_upload_at_the_remembered_size(make_bot, tg,
                                                                               fts):
    h = await make_bot()
    user = tg.user(41)
    await send(h, user, "/size")
    menu = await user.expect(lambda s: "Output size" in s.text)
    await press(h, user, menu, next(d for t, d in menu.buttons if t.strip("• ") == "768"))
    await h.feed(user, message=user.photo_message(jpeg(300, 200)))
    await user.expect(lambda s: "Got the photo" in s.text)
    await h.feed(user, message=user.photo_message(png(40, 40), caption="style"))
    first = await user.expect(lambda s: s.method == "sendPhoto" and " px" in s.text)
    assert dims(first.photo) == (768, 512)  # the size chosen before is remembered
    await job_done(h, user)

    # "another style" under the result: the gallery, and a preset re-runs with the same photo
    await press(h, user, first, next(d for t, d in first.buttons if "Another style" in t))
    gallery = await user.expect(lambda s: s.photo is not None and "Candy" in s.text)
    await press(h, user, gallery, next(d for _, d in gallery.buttons if d.startswith("pre:use")))
    second = await user.expect(lambda s: s.method == "sendPhoto" and "Candy" in s.text)
    assert dims(second.photo) == (768, 512)
    await job_done(h, user)

    # a new image once both are known: the bot asks which it is, then re-runs
    await h.feed(user, message=user.photo_message(png(30, 30, (0, 0, 250))))
    asked = await user.expect(lambda s: "photo to stylize or the style" in s.text)
    await press(h, user, asked, next(d for t, d in asked.buttons if "style" in t))
    await user.expect(lambda s: s.method == "sendPhoto" and "your image" in s.text)
    assert [(s["size"], s["style"], s["content"]) for s in fts.stylized] == [
        (768, "image", (300, 200)), (768, "candy", (300, 200)), (768, "image", (300, 200))]


async def test_messages_in_a_chats_name_are_refused_not_merged(make_bot, tg, fts):
    """Anonymous group admins and "send as channel" posts share one placeholder ``from``
    user: they are asked to write as themselves instead of sharing a job lock and results."""
    h = await make_bot()
    group = {"id": -100500, "type": "supergroup", "title": "Artists"}
    channel = {"id": -100600, "type": "channel", "title": "Art news"}
    anonymous = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                 "username": "GroupAnonymousBot"}
    admin = tg.user(-100500)  # the group's chat, where the bot answers
    photo = admin.photo_message(jpeg(300, 200))
    for sender in (group, channel):
        await h.feed(admin, message={**photo, "chat": group, "from": anonymous,
                                     "sender_chat": sender})
    await h.feed(admin, message={**photo, "chat": group, "from": anonymous,
                                 "sender_chat": channel, "is_automatic_forward": True})
    replies = [s.text for s in admin.sent()]
    assert len(replies) == 2 and all("write as yourself" in t for t in replies)
    assert not tg.calls("getFile") and fts.stylized == []  # nothing was kept or run
    # a person in the same group is served as usual
    await h.feed(admin, message={**photo, "chat": group, "from": {"id": 77, "is_bot": False,
                                                                   "first_name": "Ann"}})
    assert "Got the photo" in (await admin.expect(lambda s: "Got" in s.text)).text

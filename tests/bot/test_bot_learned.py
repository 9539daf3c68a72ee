"""Learned styles in the bot (issue 39), in-process against the fake Bot API and the fake
TorchServe: "Learn this style" under a result of an uploaded style only, its progress and the
saved style, "My styles" (use, rename, delete), and the errors a user can meet."""

from __future__ import annotations

from bot_helpers import jpeg, png

from bot import learnflow
from bot.services import torchserve as ts

LEARN = "Learn this style"


def is_result(sent) -> bool:
    return sent.method == "sendPhoto" and " px" in sent.text


async def own_style_result(user, color=(200, 60, 30)):
    """A photo, then an uploaded style picture: the result under which "Learn" appears."""
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "Got the photo" in s.text)
    await user.send_photo(png(40, 40, color))
    return await user.expect(is_result)


async def learn_from(user, result):
    """Press "Learn this style" and wait for the answer; returns (status, answer)."""
    await user.press(result, LEARN)
    status = await user.expect(lambda s: "Learning your style" in s.text)
    answer = await user.expect(lambda s: s.message_id != status.message_id
                               and s.method == "sendMessage" and "Learning" not in s.text)
    return status, answer


async def open_my_styles(user):
    await user.send("/mystyles")
    return await user.expect(lambda s: s.text.startswith("⭐"))


def test_owner_ids_and_auto_names() -> None:
    assert learnflow.owner_of(42) == "tg42" and learnflow.owner_of(43) != "tg42"
    assert learnflow.next_name([]) == "style-1"
    assert learnflow.next_name(["style-1", "sunset", "style-7"]) == "style-8"
    assert [learnflow.valid_name(n) for n in ("sunset-2", "a", "x" * 40)] == [True] * 3
    bad = ("", "Sunset", "my style", "../x", "-x", "x" * 41, "закат", "a.b")
    assert not any(learnflow.valid_name(n) for n in bad)


async def test_learn_button_only_under_an_uploaded_style(make_bot, tg, fts):
    await make_bot(polling=True, LEARN_SECONDS="45")
    user = tg.user(901)
    result = await own_style_result(user)
    assert any(t == "🧠 Learn this style (~45 s)" for t, _ in result.buttons)
    await user.send("/presets")
    gallery = await user.expect(lambda s: s.photo is not None)
    assert "⭐ My styles" in [t for t, _ in gallery.buttons]  # the gallery's entry
    await user.press(gallery, "Use “Candy”")
    preset = await user.expect(lambda s: is_result(s) and "Candy" in s.text)
    assert not any(LEARN in t for t, _ in preset.buttons)


async def test_learn_shows_progress_then_the_style_is_saved_and_applied(make_bot, tg, fts):
    fts.script.learn_steps, fts.script.learn_step_s = 6, 0.05
    await make_bot(polling=True)
    user = tg.user(902)
    result = await own_style_result(user)
    status, done = await learn_from(user, result)
    edits = [e.params.get("text", "") for e in tg.calls("editMessageText", user.chat_id)
             if e.params.get("message_id") == status.message_id]
    assert any("step 3 of 6 (50%)" in t for t in edits), edits
    await user.expect_deleted(status.message_id)
    assert "“style-1” is saved in ⭐ My styles" in done.text
    learn = fts.learns[-1]
    assert (learn["name"], learn["owner"], learn["action"]) == ("style-1", "tg902", "learn")
    assert len(learn["cancel_token"]) >= 16
    await user.press(done, "Apply it to my photo")
    applied = await user.expect(lambda s: is_result(s) and "style-1" in s.text)
    assert fts.stylized[-1]["style"] == "style-1"
    assert not any(LEARN in t for t, _ in applied.buttons)  # a learned style is a preset now
    # the next one is style-2, and only this user has them
    await user.send_photo(png(40, 40, (10, 200, 30)), caption="style")
    second = await user.expect(lambda s: is_result(s) and "your image" in s.text)
    _, done2 = await learn_from(user, second)
    assert "“style-2”" in done2.text
    assert fts.learned["tg902"] == ["style-1", "style-2"]
    other = tg.user(903)
    mine = await open_my_styles(other)
    assert "no learned styles yet" in mine.text


async def test_a_learned_style_from_my_styles_stylizes_the_photo(make_bot, tg, fts):
    fts.learned["tg904"] = ["sunset"]
    fts.learned["tg999"] = ["not-yours"]
    await make_bot(polling=True)
    user = tg.user(904)
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "Got the photo" in s.text)
    await user.send("/presets")
    gallery = await user.expect(lambda s: s.photo is not None)
    await user.press(gallery, "My styles")
    mine = await user.expect(lambda s: "My styles (1 of 20)" in s.text)
    assert "• sunset" in mine.text and "not-yours" not in mine.text
    await user.press(mine, "✅ sunset")
    result = await user.expect(is_result)
    assert result.text.startswith("Style: sunset")
    assert fts.stylized[-1]["style"] == "sunset"
    # a style of another user cannot be used, even by pressing forged button data
    await user.press_data(mine, "lrn:use:not-yours:")
    await user.expect(lambda s: "no longer have a style called “not-yours”" in s.text)


async def test_rename_checks_the_name_and_delete_asks_first(make_bot, tg, fts):
    fts.learned["tg905"] = ["style-1", "style-2"]
    await make_bot(polling=True)
    user = tg.user(905)
    mine = await open_my_styles(user)
    rename = next(d for _, d in mine.buttons if d == "lrn:rename:style-1:")
    await user.press_data(mine, rename)
    await user.expect(lambda s: "Send the new name for “style-1”" in s.text)
    await user.send("My Sunset")
    invalid = await user.expect(lambda s: "can't be a style name" in s.text)
    assert "“My Sunset”" in invalid.text and "a-z" in invalid.text
    await user.send("style-2")
    await user.expect(lambda s: "“style-2” is taken" in s.text)
    await user.send("sunset")
    renamed = await user.expect(lambda s: "“style-1” is now called “sunset”" in s.text)
    assert fts.learned["tg905"] == ["sunset", "style-2"]
    assert "• sunset" in renamed.text
    await user.send("just chatting")  # no longer renaming: the usual hint
    await user.expect(lambda s: "Send me a photo" in s.text)

    await user.press_data(renamed, "lrn:delete:style-2:")
    ask = await user.expect_edit(renamed.message_id,
                                 lambda s: "Delete your style “style-2”?" in s.text)
    await user.press(ask, "Keep it")  # no: nothing deleted, the list again
    back = await user.expect_edit(renamed.message_id, lambda s: "My styles" in s.text)
    assert fts.learned["tg905"] == ["sunset", "style-2"]
    await user.press_data(back, "lrn:delete:style-2:")
    ask = await user.expect_edit(renamed.message_id, lambda s: "Delete your style" in s.text)
    await user.press(ask, "Yes, delete")
    gone = await user.expect_edit(renamed.message_id, lambda s: "Deleted “style-2”" in s.text)
    assert fts.learned["tg905"] == ["sunset"] and "(1 of 20)" in gone.text


async def test_rename_can_be_cancelled_in_russian(make_bot, tg, fts):
    fts.learned["tg906"] = ["style-1"]
    await make_bot(polling=True)
    user = tg.user(906, "Ира", "ru")
    mine = await open_my_styles(user)
    await user.press_data(mine, "lrn:rename:style-1:")
    await user.expect(lambda s: "новое имя для «style-1»" in s.text)
    await user.send("закат")
    await user.expect(lambda s: "не подходит как имя стиля" in s.text)
    await user.send("/cancel")
    await user.expect(lambda s: "имя остаётся «style-1»" in s.text)
    assert fts.learned["tg906"] == ["style-1"]


async def test_a_full_store_says_how_many_and_offers_my_styles(make_bot, tg, fts):
    fts.script.max_per_owner = 2
    fts.learned["tg907"] = ["a", "b"]
    await make_bot(polling=True)
    user = tg.user(907)
    result = await own_style_result(user)
    _, answer = await learn_from(user, result)
    assert "You already have 2 learned styles, and the limit is 2" in answer.text
    assert "Delete one" in answer.text and "⭐ My styles" in [t for t, _ in answer.buttons]


async def test_a_server_that_cannot_learn_says_so_once_then_hides_the_button(make_bot, tg,
                                                                            fts):
    fts.script.learn_fail = [(503, {"code": "learning_unavailable", "message":
                                    "learning is not set up: MSGNET_VGG is missing"})]
    await make_bot(polling=True)
    user = tg.user(908, "Пётр", "ru")
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "Фото получил" in s.text)
    await user.send_photo(png(40, 40))
    result = await user.expect(is_result)
    await user.press(result, "Выучить этот стиль")
    await user.expect(lambda s: "не умеет учить новые стили" in s.text)
    assert len(fts.learns) == 1  # not retried
    await user.press(result, "25%")  # the next result of an uploaded style: no button
    again = await user.expect(lambda s: is_result(s) and "25%" in s.text)
    assert not any("Выучить" in t for t, _ in again.buttons)
    await user.press(result, "Выучить этот стиль")  # an old button: told at once
    assert len(fts.learns) == 1


async def test_not_an_image_and_a_cancel_are_explained(make_bot, tg, fts):
    fts.script.learn_fail = [(400, {"code": "not_an_image", "message": "style: not an image",
                                    "field": "style"})]
    h = await make_bot(polling=True)
    user = tg.user(909)
    result = await own_style_result(user)
    _, answer = await learn_from(user, result)
    assert "couldn't read your style picture" in answer.text

    fts.script.learn_steps, fts.script.learn_step_s = 200, 0.05  # a fit that runs a while
    await user.press(result, LEARN)
    status = await user.expect(lambda s: "Learning your style" in s.text)
    await user.expect_edit(status.message_id, lambda s: "step" in s.text)
    await user.send("/cancel")
    await user.expect_edit(status.message_id, lambda s: s.text == "❌ Cancelled.")
    await _until(lambda: any(model == "msgnet" for model, _ in fts.cancels))
    assert fts.cancels[-1][1] == fts.learns[-1]["cancel_token"]  # the server was told too
    assert fts.learned.get("tg909", []) == [] and h.services.queue.get(user.id) is None


async def test_a_busy_server_is_explained_and_the_button_stays(make_bot, tg, fts):
    h = await make_bot(polling=True)
    user = tg.user(910)
    result = await own_style_result(user)
    fts.script.learn_fail = [(503, {"code": 503, "type": "ServiceUnavailableException",
                                    "message": "Model \"msgnet_learn\" has no worker"})]
    _, answer = await learn_from(user, result)
    assert "busy learning another style" in answer.text
    assert h.services.learn_jobs.client.available  # a busy server can still learn


async def test_a_refused_key_while_learning_is_reported_as_one(make_bot, tg, fts):
    """TorchServe's 400 InvalidKeyException (the key expired and nobody renewed the bot's
    copy) ends a learn request as a refused access key, not "learning failed"."""
    await make_bot(polling=True)
    user = tg.user(911)
    result = await own_style_result(user)
    fts.key = "renewed-elsewhere"
    _, answer = await learn_from(user, result)
    assert "access key" in answer.text and "expired" in answer.text
    assert fts.refused == ["inference-key"]  # a fixed key: nothing to read again, sent once
    assert fts.learns == []


async def _until(condition, timeout: float = 5.0) -> None:
    from job_helpers import until

    await until(condition, timeout)


def test_the_learn_stream_error_line_is_a_client_error() -> None:
    err = ts.TorchServeClient._error(409, "application/json",
                                     b'{"status": 409, "code": "cancelled", "message": "x"}', 1)
    assert (err.kind, err.code) == (ts.CLIENT, "cancelled")

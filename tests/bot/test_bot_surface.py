"""What a first-time user meets (issue 42): the welcome and help say what the bot takes and
that styles can be learned, the menu and the keyboard are short, a result carries few buttons
with the rest behind "More", presets have titles with their artists, in English and Russian."""

from __future__ import annotations

import pytest
from bot_helpers import jpeg
from test_bot_controls import first_result, is_result, more

from bot.keyboards import ControlCB, PresetCB, SizeCB
from bot.texts import LANGUAGES, Translator

WHAT_IT_TAKES = {"en": ("photo", "file", "album", "GIF", "video", "video note"),
                 "ru": ("фото", "файл", "альбом", "GIF", "видео", "видеокруж")}
OWN_STYLES = {"en": ("Learn this style", "My styles"), "ru": ("Выучить этот стиль",
                                                              "Моих стилях")}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_start_and_help_say_what_the_bot_takes_and_that_styles_can_be_learned(
        make_bot, tg, lang):
    await make_bot(polling=True)
    user = tg.user(431 if lang == "en" else 432, language_code=lang)
    await user.send("/start")
    start = await user.expect()
    await user.send("/help")
    help_ = await user.expect()
    for text in (start.text, help_.text):
        assert all(word in text for word in OWN_STYLES[lang]), text
    assert all(word in help_.text for word in WHAT_IT_TAKES[lang]), help_.text
    assert all(word in start.text for word in ("GIF", WHAT_IT_TAKES[lang][-1])), start.text
    assert "/tests" not in help_.text  # legacy: still answered, no longer advertised
    assert len(start.reply_keyboard) == 4


async def test_my_styles_button_of_the_keyboard_opens_my_styles(make_bot, tg):
    await make_bot(polling=True)
    user = tg.user(433)
    await user.send("⭐ My styles")
    assert "no learned styles yet" in (await user.expect()).text


async def test_a_result_has_few_buttons_and_the_rest_one_tap_further(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(434)
    result = await first_result(user, fts)
    first = [t for t, _ in result.buttons]
    assert first == ["🎨 Another style", "Strength 25%", "Strength 50%", "Strength 75%",
                     "• Strength 100% •", "🌈 Keep my colours: off", "📄 Full-quality file",
                     "⋯ More"]
    extra = [t for t, _ in (await more(user, result)).buttons]
    assert extra == ["📐 256", "📐 768", "📐 1024", "📐 1536", "➕ Mix with another style",
                     "🗂 My photo in every style", "◀️ Back"]
    await user.press(result, "ctl:less")
    back = await user.expect_edit(result.message_id, lambda s: "⋯ More" in str(s.buttons))
    assert [t for t, _ in back.buttons] == first
    assert len(fts.stylized) == 1  # swapping the buttons runs nothing


async def test_an_uploaded_style_adds_learn_and_the_brush_behind_more(make_bot, tg, fts):
    await make_bot(polling=True, LEARN_SECONDS="45")
    user = tg.user(435, language_code="ru")
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: bool(s.text))
    await user.send_photo(jpeg(64, 64, (200, 60, 30)))
    result = await user.expect(is_result)
    first = [t for t, _ in result.buttons]
    assert "🧠 Выучить этот стиль (~45 с)" in first and "Сила 50%" in first
    assert not any("кисть" in t for t in first) and len(first) == 9
    assert sum("кисть" in t for t, _ in (await more(user, result)).buttons) == 3


def test_presets_have_titles_with_their_artists_in_both_languages():
    en, ru = Translator("en"), Translator("ru")
    assert en.title("woman_with_hat_matisse") == "Woman with a Hat — Matisse"
    assert ru.title("woman_with_hat_matisse") == "Женщина в шляпе — Матисс"
    assert en.title("style-1") == "style-1"  # a learned style (or a new preset) as it is
    assert set(LANGUAGES["en"].TITLES) == set(LANGUAGES["ru"].TITLES)
    assert len(LANGUAGES["en"].TITLES) == 21


async def test_the_gallery_and_the_result_show_the_title(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(436)
    result = await first_result(user, fts, "udnie")
    assert result.text.startswith("Style: Udnie — Picabia ·")
    assert fts.stylized[-1]["style"] == "udnie"  # the server still gets the name


def test_buttons_sent_before_results_had_ids_still_parse():
    """Old messages in users' chats carry the shorter callback data: they still work, on
    the current images (an empty result id)."""
    assert PresetCB.unpack("pre:use:0:candy") == PresetCB(action="use", index=0, name="candy")
    assert SizeCB.unpack("size:768:1") == SizeCB(size=768, run=True)
    assert ControlCB.unpack("ctl:strength:50") == ControlCB(action="strength", value="50")
    long = PresetCB(action="use", index=20, name="w" * 40, rid="0123456789", mode="mix")
    from bot.keyboards import use_preset_cb
    packed = use_preset_cb(20, "w" * 40, "0123456789", "mix").pack()
    assert len(packed.encode()) <= 64 and PresetCB.unpack(packed).rid == long.rid
    assert PresetCB.unpack(packed).name == ""  # too long with the rest: found by its index


async def test_the_bot_describes_itself_in_both_languages_at_start(make_bot, tg):
    """The "What can this bot do?" screen a first-time user sees before /start is filled."""
    await make_bot()
    assert set(tg.descriptions) == set(tg.short_descriptions) == {"", "ru"}
    assert tg.descriptions[""] == LANGUAGES["en"].TEXTS["bot_description"]
    assert tg.short_descriptions["ru"] == LANGUAGES["ru"].TEXTS["bot_short_description"]
    for code, text in tg.descriptions.items():
        assert "GIF" in text and ("My styles" in text or "Моих стилях" in text), code
    assert all(0 < len(t) <= 120 for t in tg.short_descriptions.values())


async def test_a_refused_description_does_not_stop_the_bot(make_bot, tg):
    tg.flood["setMyDescription"] = [1, 1, 1, 1, 1, 1]  # refused (429) however often retried
    h = await make_bot(polling=True)
    user = tg.user(437)
    await user.send("/start")
    assert (await user.expect()).text.startswith("Hi,")
    assert h.polling is not None and not h.polling.done()


SHORT_PATH = {
    "en": {"got": "Got the photo", "use": "Use “",
           "caption": "Style: ", "another": "Another style", "strength": "Strength 50%"},
    "ru": {"got": "Фото получил", "use": "Выбрать «",
           "caption": "Стиль: ", "another": "Другой стиль", "strength": "Сила 50%"},
}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_short_path_photo_gallery_result_another_style(make_bot, tg, fts, lang):
    """photo -> the gallery (shown at once) -> a style -> the result -> another style and a
    weaker one from the buttons under it, without sending anything again."""
    words = SHORT_PATH[lang]
    await make_bot(polling=True)
    user = tg.user(440 if lang == "en" else 441, language_code=lang)
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: words["got"] in s.text)
    gallery = await user.expect(lambda s: s.photo is not None)  # shown at once
    assert gallery.text.startswith("🎨 Candy (1 of" if lang == "en" else "🎨 Candy (1 из")
    assert any("⭐" in t for t, _ in gallery.buttons)  # My styles, one tap from the gallery
    await user.press(gallery, words["use"])
    result = await user.expect(is_result)
    assert result.text.startswith(words["caption"] + "Candy ·")
    await user.press(result, words["another"])
    second = await user.expect(lambda s: s.photo is not None and s.message_id > result.message_id
                               and bool(s.buttons) and not is_result(s))
    await user.press(second, "▶️")
    moved = await user.expect_edit(second.message_id, lambda s: "(2 " in s.text)
    await user.press(moved, words["use"])
    mosaic = await user.expect(lambda s: is_result(s) and s.message_id > result.message_id)
    assert fts.stylized[-1]["style"] == "mosaic" and fts.stylized[-1]["content"] == (300, 200)
    await user.press(mosaic, words["strength"])
    await user.expect(lambda s: is_result(s) and s.message_id > mosaic.message_id)
    assert fts.stylized[-1]["strength"] == "0.5" and fts.stylized[-1]["style"] == "mosaic"
    assert len(user.photos()) >= 3 and not tg.calls("sendDocument", user.chat_id)

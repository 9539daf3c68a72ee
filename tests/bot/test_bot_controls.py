"""The style controls in the bot, one scenario per control: the real bot in-process, polling
the fake Bot API, against the fake TorchServe (which records the REST fields it was sent)."""

from __future__ import annotations

from bot_helpers import jpeg, png

from bot.texts import Translator

CAPTION = " px"  # every result caption ends with its size
EN = Translator("en")


def is_result(sent) -> bool:
    return sent.method == "sendPhoto" and CAPTION in sent.text


async def first_result(user, fts, preset: str = "candy"):
    """The user sends a photo and uses ``preset`` from the gallery; returns the result."""
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: "Got the photo" in s.text)
    await user.send("/presets")
    gallery = await user.expect(lambda s: s.photo is not None)
    await use_preset(user, gallery, preset)
    return await user.expect(is_result)


def use_data(sent, name: str) -> str | None:
    """The callback data of the gallery's "use" button when it shows preset ``name``."""
    return next((d for _, d in sent.buttons
                 if d.startswith("pre:use:") and d.split(":")[3] == name), None)


async def use_preset(user, gallery, name: str) -> None:
    """In the gallery, jump to ``name`` on the first page of names and use it."""
    if use_data(gallery, name) is None:
        await user.press(gallery, EN.title(name).split(" — ")[0])
        gallery = await user.expect_edit(gallery.message_id,
                                         lambda s: use_data(s, name) is not None)
    await user.press_data(gallery, use_data(gallery, name))


async def more(user, result):
    """Press "More" under ``result``; returns the message with the longer set of buttons."""
    await user.press(result, "ctl:more")
    return await user.expect_edit(result.message_id,
                                  lambda s: any("Back" in t or "Назад" in t
                                                for t, _ in s.buttons))


async def test_strength_and_colours_rerun_and_are_remembered(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(301)
    result = await first_result(user, fts)
    labels = [text for text, _ in result.buttons]
    assert ["Strength 25%", "Strength 50%", "Strength 75%", "• Strength 100% •"] == [
        t for t in labels if "Strength" in t]
    assert "Fine brush" not in " ".join(labels)  # a preset has no brush
    await user.press(result, "ctl:strength:50")
    half = await user.expect(lambda s: is_result(s) and "strength 50%" in s.text)
    assert fts.stylized[-1]["strength"] == "0.5" and "keep_colors" not in fts.stylized[-1]
    assert "• Strength 50% •" in [t for t, _ in half.buttons]
    await user.press(half, "Keep my colours: off")
    kept = await user.expect(lambda s: is_result(s) and "your colours" in s.text)
    # both choices are remembered: the next run keeps strength 50% and the colours
    assert (fts.stylized[-1]["strength"], fts.stylized[-1]["keep_colors"]) == ("0.5", "true")
    assert any("Keep my colours: on" in t for t, _ in kept.buttons)
    await user.press(kept, "ctl:strength:100")
    last = await user.expect(lambda s: is_result(s) and "strength" not in s.text)
    assert "strength" not in fts.stylized[-1] and fts.stylized[-1]["keep_colors"] == "true"
    extra = [t for t, _ in (await more(user, last)).buttons]
    assert "Mix with another style" in " ".join(extra) and "Fine brush" not in " ".join(extra)


async def test_mix_with_another_style(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(302)
    result = await first_result(user, fts, "candy")
    await user.press(await more(user, result), "Mix with another style")
    await user.expect(lambda s: "mix half-and-half" in s.text)
    gallery = await user.expect(lambda s: s.photo is not None and "(1 of" in s.text)
    await use_preset(user, gallery, "udnie")
    mixed = await user.expect(lambda s: is_result(s) and "mixed with Udnie — Picabia" in s.text)
    assert fts.stylized[-1]["style"] == "candy:0.5,udnie:0.5"
    assert mixed.text.startswith("Style: Candy")


async def test_my_photo_in_every_style_then_pick_one_from_the_sheet(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(303)
    result = await first_result(user, fts, "candy")
    await user.press(result, "ctl:strength:75")
    three_quarters = await user.expect(lambda s: is_result(s) and "strength 75%" in s.text)
    await user.press(await more(user, three_quarters), "My photo in every style")
    sheet = await user.expect(lambda s: s.method == "sendPhoto" and "every style" in s.text)
    assert fts.stylized[-1]["style"] == "sheet" and fts.stylized[-1]["size"] == 256
    assert fts.stylized[-1]["strength"] == "0.75"  # the controls apply to the sheet too
    assert [t for t, _ in sheet.buttons] == [EN.title(n).split(" — ")[0] for n in fts.presets]
    await user.press(sheet, "Mosaic")
    picked = await user.expect(lambda s: is_result(s) and "Mosaic" in s.text)
    assert fts.stylized[-1]["style"] == "mosaic" and picked.text.startswith("Style: Mosaic")


async def test_brush_for_an_uploaded_style_in_russian(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(304, language_code="ru")
    await user.send_photo(jpeg(300, 200))
    await user.expect(lambda s: bool(s.text))
    await user.send_photo(png(64, 64))
    result = await more(user, await user.expect(is_result))
    brushes = [t for t, _ in result.buttons if "кисть" in t]
    assert brushes == ["🖌 Тонкая кисть", "• 🖌 Средняя кисть •", "🖌 Широкая кисть"]
    assert any("Смешать с другим стилем" in t for t, _ in result.buttons)
    await user.press(result, "Широкая кисть")
    broad = await user.expect(lambda s: is_result(s) and "Широкая кисть" in s.text)
    assert fts.stylized[-1]["brush"] == "large" and fts.stylized[-1]["style"] == "image"
    assert "• 🖌 Широкая кисть •" in [t for t, _ in (await more(user, broad)).buttons]


async def test_a_button_pressed_while_the_last_job_tidies_up_waits_for_it(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(305)
    result = await first_result(user, fts)
    # the result is out, but its job is still removing the status message (a slow API):
    # the press must re-run, not tell the user that a job is still running
    tg.delays["deleteMessage"] = 1.0
    await user.press(result, "ctl:strength:25")
    await user.expect(lambda s: is_result(s) and "strength 25%" in s.text)
    assert not [s for s in user.sent() if "already" in s.text.lower()]

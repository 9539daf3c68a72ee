"""Issue 42's bugs, each replayed against the fake Bot API and the fake TorchServe: buttons
under a result act on *that* result, a mix ends with its style and is never left armed,
/restart forgets it, the restart notice promises only what survives, the language fallback
follows DEFAULT_LANGUAGE, and two quick uploads cannot overwrite each other's state."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from bot_helpers import TOKEN, jpeg, png
from job_helpers import until
from test_bot_controls import first_result, is_result, more, use_preset

from bot.config import load_settings
from bot.middlewares import UserLockMiddleware
from bot.services.runner import shutdown_notice
from bot.texts import LANGUAGES, pick_language

PHOTO_A, PHOTO_B = (300, 200), (200, 300)  # the content's size is what the fake records


async def state_of(h, user) -> dict:
    key = StorageKey(bot_id=h.bot.id, chat_id=user.chat_id, user_id=user.id)
    return await h.dp.storage.get_data(key)


async def second_photo(user) -> None:
    """A new photo (captioned, so it is the content): it is stylized at once."""
    await user.send_photo(jpeg(*PHOTO_B), caption="photo")
    await user.expect(lambda s: is_result(s) and s.message_id > 0)


# --- buttons act on the result they sit under -------------------------------------------------


async def test_buttons_under_an_older_result_use_that_results_photo(make_bot, tg, fts):
    h = await make_bot(polling=True)
    user = tg.user(421)
    older = await first_result(user, fts)  # photo A in candy
    assert fts.stylized[-1]["content"] == PHOTO_A
    await second_photo(user)
    assert fts.stylized[-1]["content"] == PHOTO_B  # the newest upload is photo B
    await user.press(older, "ctl:strength:50")
    await user.expect(lambda s: is_result(s) and "strength 50%" in s.text)
    assert fts.stylized[-1]["content"] == PHOTO_A and fts.stylized[-1]["strength"] == "0.5"
    await user.press(await more(user, older), "size:768")  # another size of that result
    await user.expect(lambda s: is_result(s) and "768" in s.text)
    assert (fts.stylized[-1]["content"], fts.stylized[-1]["size"]) == (PHOTO_A, 768)
    await user.press(older, "ctl:less")  # back to the first set of buttons
    await user.expect_edit(older.message_id, lambda s: any("Another style" in t
                                                           for t, _ in s.buttons))
    await user.press(older, "Another style")
    gallery = await user.expect(lambda s: s.photo is not None and "(1 of" in s.text)
    await use_preset(user, gallery, "udnie")
    await user.expect(lambda s: is_result(s) and "udnie" in s.text.lower())
    assert (fts.stylized[-1]["content"], fts.stylized[-1]["style"]) == (PHOTO_A, "udnie")
    # a style picked under an older photo's result is not the current photo's style
    assert (await state_of(h, user))["preset"] == "candy"


async def test_a_result_that_left_the_history_says_so_instead_of_using_the_new_photo(
        make_bot, tg, fts):
    h = await make_bot(polling=True)
    user = tg.user(422)
    older = await first_result(user, fts)
    await second_photo(user)
    key = StorageKey(bot_id=h.bot.id, chat_id=user.chat_id, user_id=user.id)
    await h.dp.storage.update_data(key, {"results": {}})  # as after five newer results
    stylized = len(fts.stylized)
    await user.press(older, "ctl:strength:25")
    await user.expect(lambda s: "no longer remember the pictures of that result" in s.text)
    assert len(fts.stylized) == stylized


# --- mixing -----------------------------------------------------------------------------------


async def mixed_result(user, fts):
    result = await first_result(user, fts, "candy")
    await user.press(await more(user, result), "Mix with another style")
    gallery = await user.expect(lambda s: s.photo is not None and "(1 of" in s.text)
    await use_preset(user, gallery, "udnie")
    mixed = await user.expect(lambda s: is_result(s) and "mixed with" in s.text)
    assert fts.stylized[-1]["style"] == "candy:0.5,udnie:0.5"
    return mixed


async def test_a_newly_uploaded_style_ends_the_mix(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(423)
    await mixed_result(user, fts)
    await user.send_photo(png(64, 64), caption="style")
    await user.expect(lambda s: is_result(s) and "mixed" not in s.text)
    assert fts.stylized[-1]["style"] == "image" and "style_weight" not in fts.stylized[-1]


async def test_mix_left_without_a_pick_does_not_turn_the_next_pick_into_a_mix(
        make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(424)
    result = await first_result(user, fts, "candy")
    await user.press(await more(user, result), "Mix with another style")
    mixing = await user.expect(lambda s: s.photo is not None and "(1 of" in s.text)
    await user.send("/presets")  # the user changes their mind: a plain gallery
    gallery = await user.expect(lambda s: s.photo is not None and "(1 of" in s.text
                                and not any("Mix in" in t for t, _ in s.buttons))
    await use_preset(user, gallery, "udnie")
    picked = await user.expect(lambda s: is_result(s) and "udnie" in s.text.lower())
    assert fts.stylized[-1]["style"] == "udnie" and "mixed" not in picked.text
    assert any("Mix in" in t for t, _ in mixing.buttons)  # the mix gallery says what it does


async def test_restart_forgets_the_mix(make_bot, tg, fts):
    h = await make_bot(polling=True)
    user = tg.user(425)
    await mixed_result(user, fts)
    assert (await state_of(h, user))["mix"] == "udnie"
    await user.send("/restart")
    await user.expect(lambda s: "start over" in s.text.lower())
    data = await state_of(h, user)
    assert not data.get("mix") and not data.get("mixing") and not data.get("content")


# --- one meaning for "start over" -------------------------------------------------------------


@pytest.mark.parametrize("lang, phrase", [("en", "start over"), ("ru", "заново")])
def test_start_over_means_forgetting_the_photos_everywhere(lang, phrase):
    texts = LANGUAGES[lang].TEXTS
    says = {k for k, v in texts.items() if phrase in v.lower() and k.startswith(("cmd_", "kb_"))}
    assert says == {"cmd_restart", "kb_restart"}  # /start does not claim to start over
    assert phrase in texts["restart_done"].lower()


# --- the restart notice -----------------------------------------------------------------------


def test_the_restart_notice_promises_kept_photos_only_with_redis():
    memory = load_settings({"BOT_TOKEN": TOKEN}, dotenv=None)
    redis = load_settings({"BOT_TOKEN": TOKEN, "REDIS_URL": "redis://127.0.0.1:1/0"},
                          dotenv=None)
    for module in LANGUAGES.values():
        assert "/result" not in module.TEXTS[shutdown_notice(memory)]
        assert "/result" in module.TEXTS[shutdown_notice(redis)]
    assert "kept" not in LANGUAGES["en"].TEXTS[shutdown_notice(memory)]
    assert "send your photo and style again" in LANGUAGES["en"].TEXTS[shutdown_notice(memory)]


# --- language fallback ------------------------------------------------------------------------


@pytest.mark.parametrize("code, default, expected", [
    ("uk", "en", "en"), ("kk", "en", "en"), ("be-BY", "en", "en"),
    ("uk", "ru", "ru"), ("de", "ru", "ru"), ("ru", "en", "ru"), ("en", "ru", "en"),
])
def test_the_fallback_language_is_default_language(code, default, expected):
    assert pick_language(code, None, default) == expected


async def test_a_ukrainian_user_gets_default_language(make_bot, tg):
    await make_bot(polling=True)  # DEFAULT_LANGUAGE: en
    user = tg.user(426, "Olena", "uk")
    await user.send("/start")
    assert (await user.expect()).text.startswith("Hi, Olena!")


# --- two quick uploads ------------------------------------------------------------------------


class RacingStorage(MemoryStorage):
    """Memory storage that lets a second update of the user read before the first one
    writes, as Redis's round trips may (MemoryStorage never yields, which hides the race).

    The first write waits until another task has read twice (the language middleware, then
    the handler's "is this the photo or the style?") or until that other update waits at
    the per-user lock: the lock, where present, is then what orders the two."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[asyncio.Task, int] = {}
        self.lock: UserLockMiddleware | None = None
        self.written = False

    async def get_data(self, key):
        task = asyncio.current_task()
        self.reads[task] = self.reads.get(task, 0) + 1
        return await super().get_data(key)

    async def set_data(self, key, data):
        if not self.written:
            self.written = True
            me = asyncio.current_task()
            await until(lambda: any(n >= 2 for t, n in self.reads.items() if t is not me)
                        or (self.lock is not None and self.lock.waiting() > 1))
        await super().set_data(key, data)


async def test_two_images_sent_at_once_become_the_photo_and_the_style(make_bot, tg, fts):
    storage = RacingStorage()
    h = await make_bot(storage=storage)
    lock = next((m for m in h.dp.message.outer_middleware
                 if isinstance(m, UserLockMiddleware)), None)
    storage.lock = lock
    user = tg.user(427)
    photo, style = user.photo_message(jpeg(*PHOTO_A)), user.photo_message(png(40, 60))
    await asyncio.gather(h.feed(user, message=photo), h.feed(user, message=style))
    await user.expect(lambda s: is_result(s))
    assert fts.stylized[-1]["content"] == PHOTO_A and fts.stylized[-1]["style"] == "image"
    assert lock is not None and len(lock) == 0  # none kept once nobody holds or waits


async def test_an_album_still_gathers_behind_the_per_user_lock(make_bot, tg, fts):
    await make_bot(polling=True)
    user = tg.user(428)
    await user.send_album([("photo", jpeg(*PHOTO_A)), ("photo", png(40, 60))])
    await user.expect(lambda s: "Got the photo and the style" in s.text)
    await user.expect(is_result)
    assert fts.stylized[-1]["content"] == PHOTO_A and fts.stylized[-1]["style"] == "image"


async def test_a_mix_under_an_earlier_result_of_this_photo_becomes_the_current_style(
        make_bot, tg, fts):
    """candy, then udnie from its buttons, then "mix" under the candy result: the current
    style is that mix (candy + mosaic), not udnie with mosaic added."""
    await make_bot(polling=True)
    user = tg.user(429)
    candy = await first_result(user, fts, "candy")
    await user.press(candy, "Another style")
    gallery = await user.expect(lambda s: s.photo is not None and "(1 of" in s.text)
    await use_preset(user, gallery, "udnie")
    await user.expect(lambda s: is_result(s) and "Udnie" in s.text)
    await user.press(await more(user, candy), "Mix with another style")
    gallery = await user.expect(lambda s: s.photo is not None and "(1 of" in s.text
                                and s.message_id > candy.message_id + 2)
    await use_preset(user, gallery, "mosaic")
    mixed = await user.expect(lambda s: is_result(s) and "mixed with Mosaic" in s.text)
    assert fts.stylized[-1]["style"] == "candy:0.5,mosaic:0.5"
    await user.send("/result")
    await user.expect(lambda s: is_result(s) and s.message_id > mixed.message_id)
    assert len(fts.stylized) == 4 and fts.stylized[-1]["style"] == "candy:0.5,mosaic:0.5"

"""Unit tests of the bot's parts that need no Telegram: texts, config, flow rules, caches,
rate limit, job queue, logging redaction, image headers."""

from __future__ import annotations

import logging

import pytest
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Message
from bot_helpers import TOKEN, jpeg, png
from job_helpers import Work, until

from bot import flow
from bot.app import create_storage
from bot.config import ConfigError, Secret, load_settings
from bot.imageinfo import dimensions, sniff
from bot.logging import RedactingFormatter
from bot.middlewares.access import RateLimitMiddleware
from bot.services.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    SHUTDOWN,
    USER,
    Job,
    JobQueue,
    QueueFull,
    ShuttingDown,
    UserBusy,
)
from bot.services.results import ResultCache
from bot.texts import LANGUAGES, Translator, caption_role, pick_language, placeholders

# --- texts ------------------------------------------------------------------------------------


def test_every_language_has_every_text_with_the_same_placeholders():
    en = LANGUAGES["en"].TEXTS
    for code, module in LANGUAGES.items():
        assert set(module.TEXTS) == set(en), code
        for key, text in en.items():
            assert placeholders(module.TEXTS[key]) == placeholders(text), (code, key)


def test_translator_formats_and_falls_back_to_english_for_unknown_languages():
    assert Translator("ru")("size_set", size=768) == "Размер: 768 px."
    assert Translator("xx").lang == "en"


@pytest.mark.parametrize("code, chosen, expected", [
    ("ru", None, "ru"), ("ru-RU", None, "ru"), ("uk", None, "en"), ("en-GB", None, "en"),
    ("de", None, "en"), (None, None, "en"), ("ru", "en", "en"), ("en", "ru", "ru"),
])
def test_language_is_the_users_choice_then_telegrams(code, chosen, expected):
    assert pick_language(code, chosen) == expected


@pytest.mark.parametrize("caption, role", [
    ("style", "style"), ("This is the STYLE!", "style"), ("стиль", "style"),
    ("фото стиля", "style"), ("content", "content"), ("моё фото", "content"),
    ("original", "content"), ("a cat", None), (None, None), ("", None),
])
def test_caption_says_which_image_it_is(caption, role):
    assert caption_role(caption) == role


# --- config -----------------------------------------------------------------------------------


def test_token_from_file_and_it_never_shows_in_repr(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    settings = load_settings({"BOT_TOKEN_FILE": str(path)}, dotenv=None)
    assert settings.bot_token.get() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    assert repr(Secret("abc")) == "Secret('***')"


@pytest.mark.parametrize("env, message", [
    ({}, "no bot token"),
    ({"BOT_TOKEN": "not-a-token"}, "does not look like"),
    ({"BOT_TOKEN_FILE": "/nonexistent/token"}, "cannot be read"),
    ({"BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://x.example"}, "WEBHOOK_SECRET"),
    ({"BOT_TOKEN": TOKEN, "MAX_CONCURRENT_JOBS": "0"}, "MAX_CONCURRENT_JOBS"),
    ({"BOT_TOKEN": TOKEN, "TS_TIMEOUT": "soon"}, "TS_TIMEOUT"),
    ({"BOT_TOKEN": TOKEN, "ALLOWED_USER_IDS": "12,abc"}, "ALLOWED_USER_IDS"),
])
def test_bad_config_fails_with_the_variable_named(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env, dotenv=None)


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"BOT_TOKEN={TOKEN}\nTS_URL=http://ts.example:8080/\nTS_MODEL=from-file\n")
    settings = load_settings({"TS_MODEL": "from-env", "ALLOWED_USER_IDS": "1, 2;3"},
                             dotenv=dotenv)
    assert settings.ts_url == "http://ts.example:8080"
    assert settings.ts_model == "from-env"
    assert settings.allowed_users == {1, 2, 3}


def test_the_upload_bound_is_the_servers_even_with_a_local_bot_api_server():
    # issue 15: with a local server the default was 2000 MB, read whole into memory, while
    # TorchServe refuses anything over 20 MiB
    public_api = load_settings({"BOT_TOKEN": TOKEN}, dotenv=None)
    local = load_settings({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": "http://127.0.0.1:8081",
                           "TELEGRAM_API_LOCAL": "true"}, dotenv=None)
    assert public_api.max_file_bytes == 20 * 2**20 and local.max_file_bytes == 20 * 2**20
    with pytest.raises(ValueError, match="MAX_FILE_MB"):
        load_settings({"BOT_TOKEN": TOKEN, "MAX_FILE_MB": "5000"}, dotenv=None)
    assert load_settings({"BOT_TOKEN": TOKEN, "TELEGRAM_API_LOCAL": "1", "MAX_FILE_MB": "100"},
                         dotenv=None).max_file_bytes == 100 * 2**20


def test_redis_storage_when_redis_url_is_set():
    from aiogram.fsm.storage.redis import RedisStorage

    with_redis = load_settings({"BOT_TOKEN": TOKEN, "REDIS_URL": "redis://127.0.0.1:1/0"},
                               dotenv=None)
    assert isinstance(create_storage(with_redis), RedisStorage)
    assert isinstance(create_storage(load_settings({"BOT_TOKEN": TOKEN}, dotenv=None)),
                      MemoryStorage)


# --- logging ----------------------------------------------------------------------------------


def test_formatter_scrubs_secrets_from_messages_and_tracebacks():
    formatter = RedactingFormatter([TOKEN, "inference-key"])
    url = f"http://127.0.0.1:1/file/bot{TOKEN}/photos/1.jpg"
    try:
        raise RuntimeError(f"404, url={url!r}")
    except RuntimeError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "GET %s failed with %s",
                                   (url, "inference-key"), sys.exc_info())
    for fmt in (formatter, RedactingFormatter([TOKEN, "inference-key"], json_lines=True)):
        text = fmt.format(record)
        assert TOKEN not in text and "inference-key" not in text
        assert "bot***" in text


# --- image headers ----------------------------------------------------------------------------


def test_dimensions_from_headers():
    assert sniff(jpeg(30, 20)) == "jpeg" and dimensions(jpeg(30, 20)) == (30, 20)
    assert sniff(png(7, 9)) == "png" and dimensions(png(7, 9)) == (7, 9)
    assert dimensions(b"%PDF-1.4") is None and sniff(b"%PDF-1.4") is None


# --- flow -------------------------------------------------------------------------------------


def _message(**content) -> Message:
    return Message.model_validate({"message_id": 1, "date": 0,
                                   "chat": {"id": 5, "type": "private"}, **content})


def _document(name: str, mime: str | None, size: int = 1000) -> Message:
    doc = {"file_id": "F", "file_unique_id": "U", "file_name": name, "file_size": size}
    if mime:
        doc["mime_type"] = mime
    return _message(document=doc)


def test_image_ref_takes_the_largest_photo_size():
    msg = _message(photo=[
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60},
        {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 853,
         "file_size": 100_000}])
    ref = flow.image_ref(msg, 20 * 2**20)
    assert ref["file_id"] == "big" and ref["kind"] == "photo"


@pytest.mark.parametrize("name, mime, ok", [
    ("a.jpg", "image/jpeg", True), ("scan.png", None, True), ("x.webp", "image/webp", True),
    ("x.bin", "application/octet-stream", False), ("doc.pdf", "application/pdf", False),
    ("pic.jpg", "application/octet-stream", True), ("v.svg", "image/svg+xml", False),
])
def test_documents_must_be_raster_images(name, mime, ok):
    ref = flow.image_ref(_document(name, mime), 20 * 2**20)
    assert isinstance(ref, dict) is ok
    if not ok:
        assert ref.key == "not_an_image" and ref.values["name"] == name


def test_files_over_the_download_limit_are_refused_up_front():
    ref = flow.image_ref(_document("big.png", "image/png", 25 * 2**20), 20 * 2**20)
    assert ref.key == "file_too_large" and ref.values == {"size_mb": "25.0", "limit_mb": "20"}


def test_role_decision():
    photo = {"file_id": "x"}
    assert flow.decide_role(None, None, {}) == "content"
    assert flow.decide_role(None, None, {"content": photo}) == "style"
    assert flow.decide_role(None, None, {"content": photo, "preset": "candy"}) == "ask"
    assert flow.decide_role("style", None, {}) == "style"
    assert flow.decide_role(None, "style", {}) == "style"
    assert flow.decide_role("content", "style", {"content": photo, "style": photo}) == "content"


def test_album_roles_follow_captions_else_order():
    assert flow.album_roles([None, None], caption_role) == (0, 1)
    assert flow.album_roles(["style", None], caption_role) == (1, 0)
    assert flow.album_roles([None, "content"], caption_role) == (1, 0)
    assert flow.album_roles(["content", "style"], caption_role) == (0, 1)


def test_last_of_each_kind_wins_and_a_style_image_replaces_a_preset():
    data = {"content": {"file_id": "a"}, "preset": "candy"}
    data.update(flow.assign(data, "style", {"file_id": "s"}))
    assert data["preset"] is None and data["style"] == {"file_id": "s"}
    spec = flow.job_spec(data, [512])
    assert spec["style"] == {"file_id": "s"} and spec["preset"] is None
    data["preset"] = "mosaic"
    assert flow.job_spec(data, [768])["style"] is None


def test_kept_result_specs_are_bounded():
    data: dict = {}
    for i in range(flow.MAX_KEPT_RESULTS + 3):
        data.update(flow.remember_result(data, f"r{i}", {"sizes": [i]}))
    assert len(data["results"]) == flow.MAX_KEPT_RESULTS and "r0" not in data["results"]


# --- caches and limits ------------------------------------------------------------------------


def test_result_cache_bounds_per_user_and_never_crosses_users():
    cache = ResultCache(per_user=2, max_bytes=1000)
    a1, a2, a3 = (cache.put(1, b"a" * 10, "a.jpg") for _ in range(3))
    b1 = cache.put(2, b"b" * 10, "b.jpg")
    assert cache.get(1, a1) is None and cache.get(1, a3).data == b"a" * 10
    assert cache.get(1, b1) is None and cache.get(2, b1) is not None
    cache.put(3, b"c" * 990, "c.jpg")  # over the byte cap: the oldest go
    assert cache.get(1, a2) is None


def test_rate_limit_allows_a_burst_then_refills():
    limiter = RateLimitMiddleware(burst=3, per_minute=60)
    assert [limiter.allow(7, now=100.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow(8, now=100.0)  # other users are not affected
    assert not limiter.allow(7, now=100.5)
    assert limiter.allow(7, now=101.1)


# --- job queue --------------------------------------------------------------------------------


async def test_queue_caps_concurrency_and_reports_positions():
    queue = JobQueue(concurrency=1)
    queue.start()
    works = [Work() for _ in range(3)]
    jobs = [w.job(uid) for uid, w in enumerate(works)]
    assert [await queue.submit(j) for j in jobs] == [0, 1, 2]
    await works[0].started.wait()
    assert queue.running == 1 and not works[1].started.is_set()
    works[0].release.set()
    await works[1].started.wait()
    await until(lambda: works[2].positions[-1:] == [1])
    assert works[1].positions[-1] == 0 and queue.position(jobs[2]) == 1
    works[1].release.set()
    works[2].release.set()
    await jobs[2].done.wait()
    assert [j.state for j in jobs] == [DONE, DONE, DONE]
    await queue.shutdown(1)


async def test_one_job_per_user_and_a_bounded_queue():
    queue = JobQueue(concurrency=1, max_queue=1)
    queue.start()
    work = Work()
    await queue.submit(work.job(1))
    with pytest.raises(UserBusy):
        await queue.submit(work.job(1))
    await work.started.wait()
    await queue.submit(work.job(2))
    with pytest.raises(QueueFull):
        await queue.submit(work.job(3))
    work.release.set()
    await queue.shutdown(1)
    with pytest.raises(ShuttingDown):
        await queue.submit(work.job(4))


async def test_cancel_a_queued_and_a_running_job():
    queue = JobQueue(concurrency=1)
    queue.start()
    running, waiting = Work(), Work()
    first, second = running.job(1), waiting.job(2)
    await queue.submit(first)
    await queue.submit(second)
    await running.started.wait()
    assert (await queue.cancel(2)) is second
    assert second.state == CANCELLED and waiting.cancelled == [USER]
    assert await queue.cancel(1) is first
    assert first.state == CANCELLED and running.cancelled == [USER]
    assert first.task.cancelled() and not waiting.started.is_set()
    assert await queue.cancel(1) is None
    await queue.shutdown(1)


async def test_a_failing_job_frees_its_slot():
    queue = JobQueue(concurrency=1)
    queue.start()

    async def boom(job):
        raise ValueError("boom")

    bad = Job(1, boom)
    await queue.submit(bad)
    await bad.done.wait()
    assert bad.state == FAILED and isinstance(bad.error, ValueError)
    good = Work()
    good.release.set()
    job = good.job(1)
    await queue.submit(job)
    await job.done.wait()
    assert job.state == DONE
    await queue.shutdown(1)


async def test_shutdown_drains_running_jobs_within_grace_and_cancels_the_rest():
    queue = JobQueue(concurrency=1)
    queue.start()
    quick, stuck, waiting = Work(), Work(), Work()
    await queue.submit(quick.job(1))
    await quick.started.wait()
    quick.release.set()  # finishes within the grace period
    await queue.shutdown(grace=2)
    assert quick.cancelled == []

    queue = JobQueue(concurrency=1)
    queue.start()
    j1, j2 = stuck.job(1), waiting.job(2)
    await queue.submit(j1)
    await queue.submit(j2)
    await stuck.started.wait()
    await queue.shutdown(grace=0.1)
    assert stuck.cancelled == [SHUTDOWN] and waiting.cancelled == [SHUTDOWN]
    assert j1.state == CANCELLED and j2.state == CANCELLED

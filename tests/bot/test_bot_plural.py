"""Plural forms of the texts (bot/texts/plural.py): the CLDR rules of English and Russian,
and the texts that count frames and styles reading right for 1, 2, 5, 11, 21, 22, 111."""

from __future__ import annotations

import re

import pytest

from bot.texts import LANGUAGES, Translator, placeholders
from bot.texts.plural import english, russian

ONE, FEW, MANY = 0, 1, 2


@pytest.mark.parametrize("n, form", [
    (1, ONE), (21, ONE), (101, ONE), (1001, ONE), (-1, ONE),
    (2, FEW), (3, FEW), (4, FEW), (22, FEW), (34, FEW), (102, FEW),
    (0, MANY), (5, MANY), (10, MANY), (11, MANY), (12, MANY), (14, MANY), (19, MANY),
    (20, MANY), (25, MANY), (100, MANY), (111, MANY), (112, MANY), (114, MANY),
    (1.5, FEW), (0.5, FEW),  # a fraction: "1,5 кадра"
])
def test_russian_rule(n, form):
    assert russian(n) == form


@pytest.mark.parametrize("n, form", [(1, 0), (0, 1), (2, 1), (21, 1), (1.5, 1)])
def test_english_rule(n, form):
    assert english(n) == form


@pytest.mark.parametrize("frames, word", [(1, "1 кадр,"), (3, "3 кадра,"), (5, "5 кадров,"),
                                          (11, "11 кадров,"), (21, "21 кадр,"),
                                          (22, "22 кадра,"), (111, "111 кадров,")])
def test_a_russian_clip_caption_counts_its_frames(frames, word):
    caption = Translator("ru")("clip_caption", style="Крик", frames=frames, size=480)
    assert caption == f"Крик · {word} 480 px"


def test_up_to_n_frames_is_genitive_in_russian_and_plural_in_english():
    values = {"clip_size": 480, "max_seconds": "15", "max_frames": 301, "max_fps": "15",
              "limit_mb": "20"}
    ru = Translator("ru")("got_clip", frames=21, **values)
    assert "до 21 кадра," in ru and "301 кадр," in ru
    assert "до 25 кадров," in Translator("ru")("got_clip", frames=25, **values)
    en = Translator("en")("got_clip", frames=1, **values)
    assert "up to 1 frame at" in en and "301 frames," in en


def test_learned_styles_and_attempts_are_counted():
    ru, en = Translator("ru"), Translator("en")
    assert "У вас уже 2 выученных стиля," in ru("learn_store_full", count=2, limit=2)
    assert "У вас уже 21 выученный стиль," in ru("learn_store_full", count=21, limit=30)
    assert "You already have 1 learned style," in en("learn_store_full", count=1, limit=1)
    assert "(I tried 1 time)" in en("err_busy", attempts=1)


def test_a_count_not_known_yet_reads_as_many():
    assert Translator("ru")("running_clip", done=0, total="…").endswith("из … кадров")


def test_every_plural_field_has_the_languages_number_of_forms():
    forms = {"en": 2, "ru": 3}
    for code, module in LANGUAGES.items():
        for key, text in module.TEXTS.items():
            for spec in re.findall(r"{\w+:([^{}]*)}", text):
                assert spec.count("|") + 1 == forms[code], (code, key, spec)
            assert placeholders(text) == placeholders(LANGUAGES["en"].TEXTS[key]), key

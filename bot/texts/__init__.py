"""User-facing texts, one module per language, looked up by key.

A small dict-based translator instead of gettext: two languages, no build step for ``.mo``
files, and tests can check that every language has every key with the same placeholders.
"""

from __future__ import annotations

import re
from types import ModuleType

from bot.texts import en, ru
from bot.texts.plural import PluralFormatter

LANGUAGES: dict[str, ModuleType] = {"en": en, "ru": ru}
DEFAULT = "en"


def pick_language(telegram_code: str | None, chosen: str | None = None,
                  default: str = DEFAULT) -> str:
    """The user's choice (/language) wins, then their Telegram language, then ``default``
    (``DEFAULT_LANGUAGE``): a language we have no texts for is not guessed to read another
    one we have (an operator whose users read Russian sets ``DEFAULT_LANGUAGE=ru``)."""
    if chosen in LANGUAGES:
        return chosen  # type: ignore[return-value]
    code = (telegram_code or "").lower().split("-")[0]
    if code in LANGUAGES:
        return code
    return default if default in LANGUAGES else DEFAULT


class Translator:
    """Texts of one language; ``tr("key", name=...)`` formats a text."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self._texts = LANGUAGES[self.lang].TEXTS
        self._format = PluralFormatter(self.lang).format

    def __call__(self, key: str, /, **values: object) -> str:
        """The text ``key`` with ``values``; ``{n:one|few|many}`` picks a plural form."""
        if key not in self._texts:  # a text not translated yet: English, its plurals too
            return Translator(DEFAULT)(key, **values)
        text = self._texts[key]
        return self._format(text, **values) if values else text

    def title(self, name: str) -> str:
        """A preset's display title ("Woman with a Hat — Matisse"), or its name when the
        texts have none (a learned style, a preset added on the server)."""
        titles = getattr(LANGUAGES[self.lang], "TITLES", {})
        return titles.get(name) or getattr(LANGUAGES[DEFAULT], "TITLES", {}).get(name) or name

    def __repr__(self) -> str:
        return f"Translator({self.lang!r})"


def variants(key: str) -> set[str]:
    """A text in every language (to match reply-keyboard buttons whatever the language)."""
    return {module.TEXTS[key] for module in LANGUAGES.values()}


def placeholders(text: str) -> set[str]:
    """The names of a text's fields (``{n}`` and the plural ``{n:frame|frames}`` alike)."""
    return set(re.findall(r"{(\w+)(?::[^{}]*)?}", text))


_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def caption_role(caption: str | None) -> str | None:
    """'content' or 'style' when a caption says which image it is, else None."""
    if not caption:
        return None
    words = [w.lower() for w in _WORD.findall(caption)]
    style = {w for module in LANGUAGES.values() for w in module.CAPTION_STYLE}
    content = {w for module in LANGUAGES.values() for w in module.CAPTION_CONTENT}
    # "style" anywhere wins: "style photo" and "фото стиля" both mean the style
    if any(w in style for w in words):
        return "style"
    if any(w in content for w in words):
        return "content"
    return None

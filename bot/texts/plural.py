"""Plural forms for the texts: ``{frames} {frames:frame|frames}`` picks the word by number.

Measured against the real libraries (issue 42): aiogram's gettext i18n needs Babel (a
11 MB wheel, 32 MiB unpacked) plus .po files compiled to .mo at build time, and Fluent
(``fluent.runtime``) needs Babel too, ``pytz`` and .ftl files; either means rewriting every
text of both languages and regenerating the hashed locks, for two languages whose plural
rules fit in a few lines (CLDR: English one/other, Russian one/few/many, and "other" for a
fraction, which reads like "few": 1,5 кадра). So the rule is written here and tested.
"""

from __future__ import annotations

import string
from collections.abc import Callable


def english(n: float) -> int:
    """0: one (1 frame), 1: other (0 frames, 2 frames, 1.5 frames)."""
    return 0 if n == 1 else 1


def russian(n: float) -> int:
    """0: one (1, 21, 101 кадр), 1: few (2-4, 22-24; fractions: 1,5 кадра),
    2: many (0, 5-20, 25-30, 111-114 кадров)."""
    if n != int(n):
        return 1
    n = abs(int(n))
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


RULES: dict[str, Callable[[float], int]] = {"en": english, "ru": russian}


class PluralFormatter(string.Formatter):
    """``str.format`` plus a format spec of word forms separated by ``|`` (as many as the
    language's rule has), chosen by the field's number; other specs work as usual."""

    def __init__(self, lang: str):
        super().__init__()
        self.rule = RULES.get(lang, english)

    def format_field(self, value: object, format_spec: str) -> str:
        if "|" not in format_spec:
            return super().format_field(value, format_spec)
        forms = format_spec.split("|")
        try:
            number = float(str(value).replace(",", "."))
        except ValueError:  # not a number: the form for "many" is the safe guess
            return forms[-1]
        return forms[min(self.rule(number), len(forms) - 1)]

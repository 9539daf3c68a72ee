"""Learned styles in the conversation, free of I/O: whose they are, what they are called.

A learned style lives in the server's style store under an *owner*; the bot gives every
Telegram user their own (``tg<user id>``), so a style is private to the person who learned
it: nobody else's requests carry that owner. Names follow the store's rule (1-40 of
``a-z 0-9 - _``, starting with a letter or digit); new styles are called ``style-N``.
"""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # msgnet.learning.style_store.NAME_PATTERN
AUTO_NAME = re.compile(r"^style-(\d+)$")


def owner_of(user_id: int) -> str:
    """The store owner of a Telegram user: stable, and never shared between two users."""
    return f"tg{int(user_id)}"


def valid_name(text: str) -> bool:
    """Whether ``text`` (already stripped) is a name the store accepts."""
    return bool(NAME_PATTERN.match(text))


def next_name(existing: list[str] | tuple[str, ...]) -> str:
    """``style-N``, one past the highest N the user has (so a deleted number is not reused
    for a different picture while a message still names it)."""
    numbers = [int(m.group(1)) for m in map(AUTO_NAME.match, existing) if m]
    return f"style-{max(numbers, default=0) + 1}"

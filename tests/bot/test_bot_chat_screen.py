"""workbench/chat_screen.py: a stretch of conversation drawn as a chat screen (the README's
screenshots come from workbench/demo_conversation.py through it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bot_helpers import jpeg

from workbench.chat_screen import (
    BOT_BG,
    BUTTON_BG,
    FONT_PATHS,
    USER_BG,
    WIDTH,
    Bubble,
    plain,
    render,
)


@pytest.mark.skipif(not Path(FONT_PATHS[0]).is_file(), reason="no DejaVu Sans here")
def test_plain_drops_what_the_font_cannot_draw():
    assert plain("🎨 Candy (1 of 21)") == "Candy (1 of 21)"
    assert plain("◀️") == "◀" and plain("Сила 50%") == "Сила 50%"
    assert plain("✅ Use “Candy” ⭐ My styles") == "Use “Candy” My styles"  # not in DejaVu
    assert plain("tap “🧠 Learn this style”") == "tap “Learn this style”"


def test_a_screen_has_the_users_bubbles_right_the_bots_left_and_their_buttons():
    bubbles = [Bubble("user", "/start"),
               Bubble("bot", "Hi, Ann! I repaint your photos.\n\n1. Send a photo."),
               Bubble("user", picture=jpeg(300, 200)),
               Bubble("bot", "Style: Candy · 512×341 px", jpeg(512, 341),
                      [["Another style"], ["Strength 25%", "Strength 50%"], ["More"]])]
    screen = render(bubbles, ["Styles", "My styles", "Start over", "Help"])
    assert screen.width == WIDTH
    pixels = screen.load()
    colours = {pixels[x, y] for x in range(0, WIDTH, 4) for y in range(0, screen.height, 4)}
    assert {USER_BG, BOT_BG, BUTTON_BG} <= colours
    shorter = render(bubbles[:2])
    assert shorter.height < screen.height  # the picture, the buttons and the keyboard count
    # the user's bubble sits on the right: its colour at the right edge, not at the left
    row = 48 + 10
    assert pixels[WIDTH - 20, row] == USER_BG and pixels[20, row] != USER_BG

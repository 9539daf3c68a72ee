"""Draw a stretch of a bot conversation as a phone-sized chat screen (PNG), for the README.

``workbench/demo_conversation.py`` records what the user sent and what the bot answered (texts,
pictures, inline buttons, the reply keyboard) and calls :func:`render` at a few points of the
short path. The drawing imitates Telegram's layout (the user's bubbles on the right, the
bot's on the left with their buttons under them, the reply keyboard at the bottom) with
Pillow and the DejaVu font; colour emoji, which that font lacks, are left out.
"""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH = 480
MARGIN, PAD, GAP = 12, 10, 8
BUBBLE_W = 340
PICTURE_W = 300
BG, BOT_BG, USER_BG = (223, 231, 238), (255, 255, 255), (225, 247, 205)
BUTTON_BG, TEXT, BUTTON_TEXT = (80, 120, 160), (20, 20, 20), (255, 255, 255)
FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf")


@dataclass
class Bubble:
    """One message: who sent it, its text, a picture (encoded bytes) and its button rows."""

    who: str  # "user" or "bot"
    text: str = ""
    picture: bytes | None = None
    buttons: list[list[str]] = field(default_factory=list)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_PATHS:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


_DRAWABLE: dict[str, bool] = {}


def _drawable(char: str) -> bool:
    """Whether the font has a glyph for ``char`` (a missing one draws as the same box as a
    private-use character)."""
    if char not in _DRAWABLE:
        font = _font(15)
        if not isinstance(font, ImageFont.FreeTypeFont):
            _DRAWABLE[char] = char.isascii()
        else:
            _DRAWABLE[char] = char.isspace() or _ink(char, font) != _ink("\ue000", font)
    return _DRAWABLE[char]


def _ink(char: str, font: ImageFont.FreeTypeFont) -> bytes:
    img = Image.new("L", (32, 32))
    ImageDraw.Draw(img).text((4, 4), char, font=font, fill=255)
    return img.tobytes()


def plain(text: str) -> str:
    """The text without what DejaVu cannot draw: colour emoji (outside the BMP or missing
    from the font, such as ✅ ⭐) and the variation selector that asks for them."""
    kept = (c for c in text if ord(c) <= 0xFFFF and c != "\ufe0f")
    text = "".join(c for c in kept if c == "\n" or _drawable(c))
    text = re.sub(r"([“«(]) +", r"\1", re.sub(r"(?m)^ +", "", text))  # where an emoji was
    return re.sub(r"(?<=\S) {2,}", " ", text).strip()


def _lines(text: str, font, width: int) -> list[str]:
    per_line = max(10, int(width / (font.getlength("n") or 7)))
    out: list[str] = []
    for paragraph in plain(text).splitlines() or [""]:
        out.extend(textwrap.wrap(paragraph, per_line) or [""])
    return out


def _picture(data: bytes) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
    except OSError:
        return None
    scale = min(1.0, PICTURE_W / img.width)
    return img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))


def _layout(bubble: Bubble, font) -> tuple[int, list[str], Image.Image | None]:
    """(height, text lines, picture) of a bubble with its buttons."""
    lines = _lines(bubble.text, font, BUBBLE_W - 2 * PAD) if bubble.text else []
    picture = _picture(bubble.picture) if bubble.picture else None
    height = 2 * PAD + len(lines) * (font.size + 4)
    if picture is not None:
        height += picture.height + (PAD if lines else 0)
    height += len(bubble.buttons) * (font.size + 16 + 4)
    return height, lines, picture


def render(bubbles: list[Bubble], keyboard: list[str] | None = None,
           title: str = "Image Styling Bot") -> Image.Image:
    """The screen: a title bar, the bubbles top to bottom, the reply keyboard (2 a row)."""
    font, bold = _font(15), _font(17)
    laid = [_layout(b, font) for b in bubbles]
    keys = [plain(k) for k in keyboard or []]
    key_rows = [keys[i:i + 2] for i in range(0, len(keys), 2)]
    height = 48 + sum(h + GAP for h, _, _ in laid) + MARGIN + len(key_rows) * 40
    screen = Image.new("RGB", (WIDTH, height), BG)
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, WIDTH, 40), fill=(82, 136, 193))
    draw.text((MARGIN, 10), title, font=bold, fill=(255, 255, 255))
    y = 48
    for bubble, (h, lines, picture) in zip(bubbles, laid, strict=True):
        x = WIDTH - MARGIN - BUBBLE_W if bubble.who == "user" else MARGIN
        body = h - len(bubble.buttons) * (font.size + 20)
        draw.rounded_rectangle((x, y, x + BUBBLE_W, y + body), 12,
                               fill=USER_BG if bubble.who == "user" else BOT_BG)
        cy = y + PAD
        if picture is not None:
            screen.paste(picture, (x + PAD, cy))
            cy += picture.height + (PAD if lines else 0)
        for line in lines:
            draw.text((x + PAD, cy), line, font=font, fill=TEXT)
            cy += font.size + 4
        by = y + body + 4
        for row in bubble.buttons:
            w = (BUBBLE_W - 4 * (len(row) - 1)) / max(1, len(row))
            for i, label in enumerate(row):
                bx = x + i * (w + 4)
                draw.rounded_rectangle((bx, by, bx + w, by + font.size + 12), 8, fill=BUTTON_BG)
                text = plain(label)
                while text and font.getlength(text) > w - 8:
                    text = text[:-2] + "…" if len(text) > 2 else ""
                draw.text((bx + (w - font.getlength(text)) / 2, by + 5), text, font=font,
                          fill=BUTTON_TEXT)
            by += font.size + 16
        y += h + GAP
    y += MARGIN // 2
    for row in key_rows:
        w = (WIDTH - 2 * MARGIN - 6 * (len(row) - 1)) / len(row)
        for i, label in enumerate(row):
            bx = MARGIN + i * (w + 6)
            draw.rounded_rectangle((bx, y, bx + w, y + 32), 6, fill=(245, 245, 245))
            draw.text((bx + (w - font.getlength(label)) / 2, y + 8), label, font=font,
                      fill=TEXT)
        y += 40
    return screen


def save(bubbles: list[Bubble], path: Path, keyboard: list[str] | None = None) -> Path:
    render(bubbles, keyboard).save(path, "PNG")
    return path

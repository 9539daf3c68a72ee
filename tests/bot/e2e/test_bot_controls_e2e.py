"""The style controls end to end, one scenario per control: the real bot process against the
fake Bot API and the real TorchServe of the integration tests (tiny seeded weights; presets
candy, mosaic, udnie). The answers are the server's own pictures, so each scenario checks what
the control does to the picture, not only which buttons and captions appear. The tiny random
network paints every preset almost the same flat colour, so a change of style shows only as a
small difference; the server is deterministic, so no change at all would be 0."""

from __future__ import annotations

import io

import numpy as np
import pytest
from e2e_helpers import WAIT, more, use_preset
from PIL import Image, ImageDraw

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def structured_photo(width: int = 320, height: int = 240) -> bytes:
    """A colourful photo with edges, so that styles, strengths and colours differ visibly."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    img = Image.fromarray(np.stack([x, y, 255 - x], -1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for i in range(0, width, 40):
        draw.rectangle((i, height // 3, i + 18, 2 * height // 3), fill=(250, 250, 40))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


PHOTO = structured_photo()
STYLE_CHANGE = 0.02  # mean |difference| of two styles' pictures with the tiny weights: ~0.1-0.2


def pixels(data: bytes, size: tuple[int, int] | None = None, mode: str = "RGB") -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert(mode)
        if size is not None and img.size != size:
            img = img.resize(size, Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.float64)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def is_result(sent) -> bool:
    return sent.method == "sendPhoto" and " px" in sent.text


async def first_result(user, preset: str = "candy"):
    await user.send_photo(PHOTO)
    await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    await use_preset(user, preset)
    return await user.expect(is_result, WAIT)


async def test_strength_moves_the_picture_towards_the_photo_and_is_remembered(run_bot, tg):
    await run_bot()
    user = tg.user(601)
    full = await first_result(user)
    size = Image.open(io.BytesIO(full.photo)).size
    photo = pixels(PHOTO, size)
    await user.press(full, "ctl:strength:25")
    quarter = await user.expect(lambda s: is_result(s) and "strength 25%" in s.text, WAIT)
    await user.press(quarter, "ctl:strength:75")
    most = await user.expect(lambda s: is_result(s) and "strength 75%" in s.text, WAIT)
    d = [distance(pixels(m.photo), photo) for m in (quarter, most, full)]
    assert d[0] < d[1] < d[2], d  # monotone in strength, through the real server
    assert "• Strength 75% •" in [t for t, _ in most.buttons]
    await user.send("/result")  # a new run of the same job keeps the remembered strength
    again = await user.expect(lambda s: is_result(s) and "strength 75%" in s.text, WAIT)
    assert distance(pixels(again.photo), pixels(most.photo)) < 2.0


async def test_keep_colours_gives_the_photos_chroma(run_bot, tg):
    await run_bot()
    user = tg.user(602)
    styled = await first_result(user, "mosaic")
    size = Image.open(io.BytesIO(styled.photo)).size
    await user.press(styled, "Keep my colours: off")
    kept = await user.expect(lambda s: is_result(s) and "your colours" in s.text, WAIT)
    assert any("Keep my colours: on" in t for t, _ in kept.buttons)
    photo_chroma = pixels(PHOTO, size, "YCbCr")[..., 1:]
    kept_chroma = pixels(kept.photo, mode="YCbCr")[..., 1:]
    styled_chroma = pixels(styled.photo, mode="YCbCr")[..., 1:]
    kept_d, styled_d = (distance(c, photo_chroma) for c in (kept_chroma, styled_chroma))
    # JPEG, resampling and the gamut (a saturated colour at a new luminance is clipped)
    assert kept_d < 8.0 and kept_d < styled_d / 2, (kept_d, styled_d)
    # the luminance is still the stylized one
    assert distance(pixels(kept.photo, mode="L"), pixels(styled.photo, mode="L")) < 3.0


async def test_mix_gives_a_picture_of_its_own(run_bot, tg):
    await run_bot()
    user = tg.user(603)
    candy = await first_result(user, "candy")
    await user.press(await more(user, candy), "Mix with another style")
    await user.expect(lambda s: "mix half-and-half" in s.text, WAIT)
    await use_preset(user, "udnie", await user.expect(lambda s: s.photo is not None
                                                      and "(1 of" in s.text, WAIT))
    mixed = await user.expect(lambda s: is_result(s) and "mixed with Udnie" in s.text, WAIT)
    assert mixed.text.startswith("Style: Candy")
    await use_preset(user, "udnie")
    udnie = await user.expect(lambda s: is_result(s) and s.text.startswith("Style: Udnie")
                              and "mixed" not in s.text, WAIT)
    m, c, u = (pixels(s.photo) for s in (mixed, candy, udnie))
    assert distance(m, c) > STYLE_CHANGE and distance(m, u) > STYLE_CHANGE


async def test_my_photo_in_every_style_then_pick_one(run_bot, tg):
    await run_bot()
    user = tg.user(604)
    result = await first_result(user, "candy")
    await user.press(await more(user, result), "My photo in every style")
    sheet = await user.expect(lambda s: s.method == "sendPhoto" and "every style" in s.text,
                              WAIT)
    assert [t for t, _ in sheet.buttons] == ["Candy", "Mosaic", "Udnie"]
    # the photo and 3 presets: 2 x 2 cells of 256 x 192 under 22 px labels, 6 px gutters
    assert Image.open(io.BytesIO(sheet.photo)).size == (2 * (256 + 6) + 6,
                                                        2 * (192 + 22 + 6) + 6)
    await user.press(sheet, "Mosaic")
    picked = await user.expect(lambda s: is_result(s) and s.text.startswith("Style: Mosaic"),
                               WAIT)
    assert distance(pixels(picked.photo), pixels(result.photo)) > STYLE_CHANGE


async def test_brush_changes_an_uploaded_style(run_bot, tg):
    await run_bot()
    user = tg.user(605, language_code="ru")
    await user.send_photo(PHOTO)
    await user.expect(lambda s: "Фото получил" in s.text, WAIT)
    await user.send_photo(structured_photo(96, 96))  # the style
    medium = await user.expect(is_result, WAIT)
    assert "• 🖌 Средняя кисть •" in [t for t, _ in (await more(user, medium)).buttons]
    await user.press(medium, "Широкая кисть")
    broad = await user.expect(lambda s: is_result(s) and "Широкая кисть" in s.text, WAIT)
    assert "• 🖌 Широкая кисть •" in [t for t, _ in (await more(user, broad)).buttons]
    assert distance(pixels(broad.photo), pixels(medium.photo)) > STYLE_CHANGE

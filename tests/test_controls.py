"""msgnet.inference.controls and the contact sheet: the maths of strength, colours, mixes and
brush, and that they compose with each other and with tiled outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from weights_factory import TINY_PRESETS, seeded_pixels

from msgnet.inference.controls import (
    ControlError,
    Controls,
    brush_style_size,
    check_strength,
    keep_colors,
    luma,
    mix_targets,
    normalise_weights,
    parse_weighted,
)
from msgnet.inference.sheet import ORIGINAL_LABEL, SheetError, contact_sheet
from msgnet.inference.stylize import Stylizer
from msgnet.inference.tiling import TileConfig

pytestmark = pytest.mark.usefixtures("torch_single_thread")
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def stylizer(tiny_weights_path: Path) -> Stylizer:
    return Stylizer.from_file(tiny_weights_path, max_size=256, default_size=64,
                              default_style_size=48)


@pytest.fixture(scope="module")
def tiled(tiny_weights_path: Path) -> Stylizer:
    """Tiling forced on from 48x48 up: 32 px tiles, thumbnail 32 px."""
    config = TileConfig(threshold_pixels=48 * 48, tile=32, halo=40, blend=8, thumb_size=32)
    return Stylizer.from_file(tiny_weights_path, max_size=256, default_size=64,
                              default_style_size=48, tiling=config)


def chroma(bgr: torch.Tensor) -> torch.Tensor:
    """Cb, Cr (BT.601, JPEG) of a BGR batch."""
    b, g, r = bgr[:, 0], bgr[:, 1], bgr[:, 2]
    return torch.stack([-0.168736 * r - 0.331264 * g + 0.5 * b,
                        0.5 * r - 0.418688 * g - 0.081312 * b], 1)


def photo(h: int = 40, w: int = 56, seed: int = 3) -> torch.Tensor:
    return seeded_pixels(1, 3, h, w, seed=seed)


# ---------------------------------------------------------------------------- strength
@pytest.mark.parametrize("method", ["pixels", "gram"])
def test_strength_one_is_todays_output(stylizer: Stylizer, method: str) -> None:
    x, target = photo(), stylizer.preset_target("candy")
    plain = stylizer.run([x], [target])[0]
    full = stylizer.run([x], [target], [Controls(strength=1.0, method=method)])[0]
    assert torch.equal(plain, full)


def test_pixel_strength_zero_is_the_photo_and_half_is_halfway(stylizer: Stylizer) -> None:
    x, target = photo(), stylizer.preset_target("mosaic")
    full = stylizer.run([x], [target])[0]
    zero, half = stylizer.run([x, x], [target, target],
                              [Controls(strength=0.0), Controls(strength=0.5)])
    torch.testing.assert_close(zero, x, atol=1e-4, rtol=0)
    torch.testing.assert_close(half, (x + full) / 2, atol=1e-3, rtol=0)


@pytest.mark.parametrize("method", ["pixels", "gram"])
def test_strength_moves_monotonically_away_from_the_photo(stylizer: Stylizer,
                                                          method: str) -> None:
    x, target = photo(), stylizer.preset_target("udnie")
    outs = stylizer.run([x] * len(STRENGTHS), [target] * len(STRENGTHS),
                        [Controls(strength=s, method=method) for s in STRENGTHS])
    full = outs[-1]
    to_full = [float((o - full).abs().mean()) for o in outs]
    assert all(b <= a + 1e-4 for a, b in zip(to_full, to_full[1:], strict=False)), to_full
    assert to_full[-1] == 0.0
    if method == "pixels":
        to_photo = [float((o - x).abs().mean()) for o in outs]
        assert all(b >= a - 1e-4 for a, b in zip(to_photo, to_photo[1:], strict=False))


def test_gram_strength_zero_uses_the_photos_own_target(stylizer: Stylizer) -> None:
    x = photo()
    own = stylizer.content_target(x)
    assert own.shape == (1, 32, 32)
    zero = stylizer.run([x], [stylizer.preset_target("candy")],
                        [Controls(strength=0.0, method="gram")])[0]
    torch.testing.assert_close(zero, stylizer.run([x], [own])[0])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "half", True, None])
def test_strength_out_of_range_names_the_field(bad) -> None:
    with pytest.raises(ControlError, match="strength") as info:
        check_strength(bad)
    assert info.value.field == "strength"
    with pytest.raises(ControlError):
        Controls(strength=bad)  # type: ignore[arg-type]
    with pytest.raises(ControlError, match="strength method"):
        Controls(method="bogus")


# ---------------------------------------------------------------------------- colours
def test_keep_colors_keeps_the_photos_chroma(stylizer: Stylizer) -> None:
    x = photo(seed=5).clamp(40, 215)  # inside the gamut, so the clamp does not bite
    styled = stylizer.run([x], [stylizer.preset_target("candy")])[0]
    kept = stylizer.run([x], [stylizer.preset_target("candy")], [Controls(keep_colors=True)])[0]
    inside = ((kept > 0.5) & (kept < 254.5)).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    assert inside.float().mean() > 0.5
    diff = (chroma(kept) - chroma(x)).abs()[inside]
    assert float(diff.max()) < 1e-3
    torch.testing.assert_close(luma(kept)[inside[:, :1]], luma(styled)[inside[:, :1]],
                               atol=1e-3, rtol=0)
    assert float((chroma(styled) - chroma(x)).abs().mean()) > 1.0  # it did change the colours


def test_keep_colors_clamps_to_the_pixel_range() -> None:
    styled = torch.full((1, 3, 4, 4), 250.0)
    out = keep_colors(styled.clone(), torch.tensor([0.0, 0.0, 255.0]).view(1, 3, 1, 1)
                      .expand(1, 3, 4, 4).contiguous())
    assert out.min() >= 0 and out.max() <= 255


# ---------------------------------------------------------------------------- mixing
def test_weights_are_normalised_and_negatives_refused() -> None:
    assert normalise_weights([0.7, 0.3]) == pytest.approx([0.7, 0.3])
    assert normalise_weights([2, 2, 4]) == pytest.approx([0.25, 0.25, 0.5])
    with pytest.raises(ControlError, match="must not be negative, got -1"):
        normalise_weights([1, -1])
    with pytest.raises(ControlError, match="all be zero"):
        normalise_weights([0, 0])
    with pytest.raises(ControlError, match="at most 8"):
        normalise_weights([1] * 9)
    with pytest.raises(ControlError, match="finite"):
        normalise_weights([float("inf")])


def test_mix_is_one_weighted_target(stylizer: Stylizer) -> None:
    a, b = stylizer.preset_target("candy"), stylizer.preset_target("udnie")
    torch.testing.assert_close(mix_targets([a, b], [3, 1]), 0.75 * a + 0.25 * b)
    torch.testing.assert_close(mix_targets([a, b], [0.75, 0.25]), mix_targets([a, b], [6, 2]))
    torch.testing.assert_close(mix_targets([a, b]), (a + b) / 2)
    assert mix_targets([a], [1.0]) is a
    with pytest.raises(ValueError, match="2 style targets but 1 weights"):
        mix_targets([a, b], [1])


def test_a_single_style_with_weight_one_equals_todays_output(stylizer: Stylizer) -> None:
    x, target = photo(), stylizer.preset_target("mosaic")
    assert torch.equal(stylizer.run([x], [mix_targets([target], [1.0])])[0],
                       stylizer.run([x], [target])[0])


@pytest.mark.parametrize(("spec", "expected"), [
    ("candy", ("candy", 1.0)), ("candy:0.7", ("candy", 0.7)), (" udnie : 2 ", ("udnie", 2.0)),
    ("C:/photos/a.jpg", ("C:/photos/a.jpg", 1.0)), ("a.jpg:0", ("a.jpg", 0.0)),
])
def test_parse_weighted(spec: str, expected: tuple[str, float]) -> None:
    assert parse_weighted(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("candy:-0.5", "weight must be a number >= 0"), (":0.5", "no name"), ("", "empty"),
    ("candy:nan", "weight must be a number >= 0"),
])
def test_parse_weighted_errors(spec: str, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        parse_weighted(spec, "preset")


# ---------------------------------------------------------------------------- brush
def test_brush_maps_to_the_style_size(stylizer: Stylizer) -> None:
    assert [brush_style_size(b, 512) for b in ("small", "medium", "large")] == [768, 512, 256]
    assert stylizer.brush_style_size("LARGE") == 24
    assert stylizer.brush_style_size("small") == 72
    with pytest.raises(ControlError, match="brush must be one of small, medium, large"):
        brush_style_size("huge", 512)


def test_brush_changes_an_uploaded_styles_target(stylizer: Stylizer, rng_image) -> None:
    style = rng_image(96, 64, seed=9)
    small = stylizer.style_target(style, stylizer.brush_style_size("small"))
    large = stylizer.style_target(style, stylizer.brush_style_size("large"))
    assert not torch.allclose(small, large)


# ---------------------------------------------------------------------------- composition
def test_controls_compose_and_hold_on_tiled_images(stylizer: Stylizer, tiled: Stylizer) -> None:
    x = photo(80, 96, seed=11).clamp(40, 215)
    a, b = tiled.preset_target("candy"), tiled.preset_target("udnie")
    target = mix_targets([a, b], [0.6, 0.4])
    before = tiled.tiled.tiled_calls
    full = tiled.run([x], [target])[0]
    mixed = tiled.run([x, x], [target, target],
                      [Controls(strength=0.0, keep_colors=True),
                       Controls(strength=0.5, keep_colors=True)])
    assert tiled.tiled.tiled_calls == before + 3
    torch.testing.assert_close(mixed[0], x, atol=1e-3, rtol=0)  # strength 0: the photo
    expected = keep_colors((x + full) / 2, x)
    torch.testing.assert_close(mixed[1], expected, atol=1e-3, rtol=0)
    # the gram method on a tiled image: the photo's own target from a bounded thumbnail
    gram = tiled.run([x], [target], [Controls(strength=0.5, method="gram")])[0]
    assert gram.shape == x.shape and not torch.equal(gram, full)


# ---------------------------------------------------------------------------- contact sheet
def test_contact_sheet_has_a_labelled_cell_per_preset(stylizer: Stylizer, rng_image,
                                                      monkeypatch) -> None:
    calls = []
    real_run = stylizer.run

    def counting_run(contents, targets, controls=None):
        calls.append(len(contents))
        return real_run(contents, targets, controls)

    monkeypatch.setattr(stylizer, "run", counting_run)
    sheet = contact_sheet(stylizer, rng_image(90, 60, seed=2), size=64, columns=2)
    assert calls == [len(TINY_PRESETS)]  # one batched call for every preset
    # 4 cells (original + 3 presets) of 64x43 in 2 columns, 22 px labels, 6 px gutters
    assert sheet.size == (2 * (64 + 6) + 6, 2 * (43 + 22 + 6) + 6)
    sheet_kept = contact_sheet(stylizer, rng_image(90, 60, seed=2), size=64,
                               controls=Controls(strength=0.0), include_original=False)
    assert sheet_kept.size[0] > 0
    with pytest.raises(SheetError, match="from 64 to 512"):
        contact_sheet(stylizer, rng_image(90, 60), size=8)
    assert ORIGINAL_LABEL == "original"

"""msgnet.inference.stylize: presets, size policy, and server-side batching that changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from weights_factory import TINY_PRESETS, make_tiny_weights

from msgnet.imageio import image_to_bgr
from msgnet.inference.stylize import (
    Stylizer,
    UnknownPresetError,
    pad_to_multiple,
    trained_style_size,
)
from msgnet.model.checkpoint import load_weights

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def stylizer(tiny_weights_path: Path) -> Stylizer:
    return Stylizer.from_file(tiny_weights_path, max_size=256, default_size=64,
                              default_style_size=48)


def test_presets_come_from_the_weights(stylizer: Stylizer) -> None:
    assert stylizer.preset_names() == sorted(TINY_PRESETS)
    target = stylizer.preset_target("candy")
    assert target.shape == (1, 32, 32) and target.dtype == torch.float32
    assert stylizer.metadata["source"].startswith("tests")


def test_unknown_preset_lists_the_available_ones(stylizer: Stylizer) -> None:
    with pytest.raises(UnknownPresetError) as info:
        stylizer.preset_target("starry-night")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "unknown preset 'starry-night'; available: candy, mosaic, udnie"
    assert "no presets" in str(UnknownPresetError("x", []))


def test_content_keeps_its_aspect_ratio(stylizer: Stylizer, rng_image) -> None:
    x = stylizer.prepare_content(rng_image(300, 200), 96)
    assert x.shape == (1, 3, 64, 96)
    assert stylizer.prepare_content(rng_image(200, 300)).shape == (1, 3, 64, 43)  # default 64
    out = stylizer.stylize(rng_image(300, 200), stylizer.preset_target("mosaic"), size=96)
    assert out.size == (96, 64) and out.mode == "RGB"


def test_small_content_is_upscaled_to_the_requested_size(stylizer: Stylizer, rng_image) -> None:
    assert stylizer.prepare_content(rng_image(30, 20), 90).shape == (1, 3, 60, 90)


@pytest.mark.parametrize("size", [15, 257, 0, -4])
def test_size_outside_the_limits_is_a_clear_error(stylizer: Stylizer, rng_image,
                                                  size: int) -> None:
    with pytest.raises(ValueError, match="size must be between 16 and 256 pixels"):
        stylizer.prepare_content(rng_image(40, 30), size)


def test_style_target_from_image_or_tensor(stylizer: Stylizer, rng_image) -> None:
    style = rng_image(60, 40, seed=3)
    from_image = stylizer.style_target(style, 60)
    from_tensor = stylizer.style_target(image_to_bgr(style), 60)
    assert from_image.shape == (1, 32, 32)
    torch.testing.assert_close(from_image, from_tensor)
    resized = stylizer.style_target(style)  # default style size 48 differs from 60
    assert not torch.allclose(resized, from_image)
    with pytest.raises(ValueError, match="style size"):
        stylizer.style_target(style, 8)


def test_odd_sizes_come_back_at_their_own_size(stylizer: Stylizer, rng_image) -> None:
    target = stylizer.preset_target("udnie")
    contents = [stylizer.prepare_content(rng_image(w, h, seed=w), max(w, h))
                for w, h in ((33, 17), (21, 30), (16, 16))]
    outs = stylizer.run(contents, [target] * 3)
    for content, out in zip(contents, outs, strict=True):
        assert out.shape == content.shape
        assert out.min() >= 0 and out.max() <= 255


def test_mixed_sizes_and_styles_equal_running_each_alone(stylizer: Stylizer, rng_image) -> None:
    style = stylizer.style_target(rng_image(40, 40, seed=9), 40)
    items = [  # (content size, target); two share 40x24, one is odd
        ((40, 24), stylizer.preset_target("candy")),
        ((23, 31), style),
        ((40, 24), stylizer.preset_target("mosaic")),
        ((40, 24), stylizer.preset_target("candy")),
    ]
    contents = [image_to_bgr(rng_image(w, h, seed=i)) for i, ((w, h), _) in enumerate(items)]
    targets = [t for _, t in items]
    batched = stylizer.run(contents, targets)
    alone = [stylizer.run([c], [t])[0] for c, t in zip(contents, targets, strict=True)]
    for i, (b, a) in enumerate(zip(batched, alone, strict=True)):
        assert b.shape == contents[i].shape
        torch.testing.assert_close(b, a, atol=1e-3, rtol=1e-4)
    # the per-item targets really were used: same content size, different style
    assert (batched[0] - batched[2]).abs().max() > 1e-2


def test_items_of_one_shape_share_a_forward_call(stylizer: Stylizer, rng_image) -> None:
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    plain = stylizer.forward_fn

    def spy(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        calls.append((tuple(x.shape), tuple(g.shape)))
        return plain(x, g)

    stylizer.forward_fn = spy
    try:
        target = stylizer.preset_target("candy")
        contents = [image_to_bgr(rng_image(*wh)) for wh in ((24, 16), (18, 18), (24, 16))]
        outs = stylizer.run(contents, [target] * 3)
    finally:
        stylizer.forward_fn = plain
    assert sorted(calls) == [((1, 3, 20, 20), (1, 32, 32)), ((2, 3, 16, 24), (2, 32, 32))]
    assert [tuple(o.shape) for o in outs] == [(1, 3, 16, 24), (1, 3, 18, 18), (1, 3, 16, 24)]


def test_groups_larger_than_max_batch_are_split(stylizer: Stylizer, rng_image) -> None:
    calls: list[int] = []
    plain = stylizer.forward_fn
    stylizer.forward_fn = lambda x, g: (calls.append(x.shape[0]), plain(x, g))[1]
    stylizer.max_batch = 2
    try:
        content = image_to_bgr(rng_image(16, 16))
        outs = stylizer.run([content] * 5, [stylizer.preset_target("udnie")] * 5)
    finally:
        stylizer.forward_fn, stylizer.max_batch = plain, 8
    assert calls == [2, 2, 1] and len(outs) == 5
    torch.testing.assert_close(outs[0], outs[4], atol=1e-3, rtol=1e-4)


def test_run_validates_its_inputs(stylizer: Stylizer) -> None:
    target = stylizer.preset_target("candy")
    assert stylizer.run([], []) == []
    with pytest.raises(ValueError, match="1 contents but 2 targets"):
        stylizer.run([torch.zeros(1, 3, 16, 16)], [target, target])
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        stylizer.run([torch.zeros(3, 16, 16)], [target])
    with pytest.raises(ValueError, match="Gram matrix"):
        stylizer.run([torch.zeros(1, 3, 16, 16)], [torch.zeros(1, 8, 8)])


def test_stylize_accepts_a_preset_name_and_is_deterministic(stylizer: Stylizer,
                                                            rng_image) -> None:
    img = rng_image(50, 40)
    a = stylizer.stylize(img, "candy", size=48)
    b = stylizer.stylize(img, stylizer.preset_target("candy"), size=48)
    assert a.size == (48, 38) and a.tobytes() == b.tobytes()
    assert isinstance(a, Image.Image)


def test_official_layout_without_presets(tmp_path: Path) -> None:
    from weights_factory import official_layout_state_dict

    path = tmp_path / "official.model"
    torch.save(official_layout_state_dict(8), path)
    s = Stylizer(load_weights(path), max_size=64, default_size=32)
    assert s.preset_names() == [] and s.layout == "official"
    with pytest.raises(UnknownPresetError, match="ship no presets"):
        s.preset_target("candy")


def test_bad_size_policy_is_refused(tiny_weights_path: Path) -> None:
    with pytest.raises(ValueError, match="default size"):
        Stylizer.from_file(tiny_weights_path, max_size=128, default_size=512)


@pytest.mark.parametrize("h,w", [(16, 16), (17, 18), (5, 7), (2, 3)])
def test_pad_to_multiple(h: int, w: int) -> None:
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    y = pad_to_multiple(x)
    assert y.shape[-2] % 4 == 0 and y.shape[-1] % 4 == 0
    assert torch.equal(y[..., :h, :w], x)


@pytest.mark.parametrize(("variant", "tuned"), [("eager", False), ("fast", True)])
def test_only_a_tuned_variant_changes_the_process_allocator(tiny_weights_path: Path,
                                                            variant: str, tuned: bool) -> None:
    """The allocator setting is process-wide and alone makes eager ~2x faster, so a served
    ``eager`` (the baseline) must not get it from its tiling runner. Fresh process: this one's
    allocator was tuned by other tests."""
    code = ("import sys; from msgnet.inference.stylize import Stylizer; "
            "from msgnet.inference.allocator import allocator_tuned; "
            "Stylizer.from_file(sys.argv[1], variant=sys.argv[2]); "
            "print(allocator_tuned())")
    done = subprocess.run([sys.executable, "-c", code, str(tiny_weights_path), variant],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(tuned)


@pytest.mark.parametrize("wh", [(10_000, 1), (1, 10_000), (4, 1), (64, 3)])
def test_extreme_aspect_ratios_stylize_at_their_own_size(stylizer: Stylizer, wh) -> None:
    """Regression (found by tests/test_fuzz_inputs.py): a 4x1 BMP at 16 px is 16x4, 1 px high
    at quarter resolution, where the reflection pads failed; now padded and cropped back."""
    from PIL import Image

    out = stylizer.stylize(Image.new("RGB", wh, (20, 200, 90)), "candy", size=16)
    assert out.size == (16, max(1, round(16 * min(wh) / max(wh))))[:: 1 if wh[0] >= wh[1] else -1]


def test_a_one_pixel_thin_style_gives_a_target(stylizer: Stylizer) -> None:
    """Regression (tests/test_fuzz_inputs.py): a 2000x1 style is 1 px high at any style size,
    too thin for the encoder's 3 px reflection pad."""
    from PIL import Image

    target = stylizer.style_target(Image.new("RGB", (2000, 1), (200, 10, 120)), 16)
    assert torch.isfinite(target).all()


@pytest.mark.parametrize(("metadata", "expected"), [
    ({}, 512),                                               # the authors' file
    ({"style_encoder_size": 256, "recipe": {"style_size": 512}}, 256),
    ({"recipe": {"style_size": 384}}, 384),                  # before the encoder size was split
    ({"style_encoder_size": None, "recipe": None}, 512),
    ({"style_encoder_size": "large"}, 512),
])
def test_trained_style_size_reads_the_metadata(metadata: dict, expected: int) -> None:
    assert trained_style_size(metadata) == expected


def test_uploads_are_encoded_at_the_size_the_encoder_was_trained_at(tmp_path: Path) -> None:
    path = make_tiny_weights(tmp_path / "w.pt", metadata={"style_encoder_size": 40})
    default = Stylizer.from_file(path, max_size=256, default_size=64)
    assert default.default_style_size == 40
    assert [default.brush_style_size(b) for b in ("small", "medium", "large")] == [60, 40, 20]
    style = Image.effect_noise((90, 70), 60).convert("RGB")
    assert torch.equal(default.style_target(style), default.style_target(style, 40))
    assert not torch.equal(default.style_target(style), default.style_target(style, 64))
    explicit = Stylizer.from_file(path, max_size=256, default_size=64, default_style_size=48)
    assert explicit.default_style_size == 48

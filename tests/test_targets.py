"""Style targets with a learned style's decoder affine (msgnet.model.targets): the layout, and every
code path that takes a target (eager, the fast runner, the variants, tiling, batching, mixing,
strength) treating it alike, on tiny seeded nets."""

from __future__ import annotations

import pytest
import torch
from weights_factory import make_net, make_tiny_weights, seeded_pixels

from msgnet.inference.controls import Controls, interpolate_target, mix_targets
from msgnet.inference.fast import FastMSGNet
from msgnet.inference.stylize import Stylizer, pad_to_multiple
from msgnet.inference.tiling import TileConfig, tiled_stylize_one
from msgnet.inference.variants import VARIANTS, build_variant
from msgnet.model import targets
from msgnet.model.checkpoint import load_weights
from msgnet.model.net import Net

pytestmark = pytest.mark.usefixtures("torch_single_thread")
ATOL = 1e-2  # as tests/test_fast.py: far below a grey level, far above a wrong fold


@pytest.fixture(scope="module")
def net16() -> Net:
    return make_net(16, seed=3)


def _affine(net: Net, seed: int, scale: float = 0.4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, 2, net.affine_size, generator=gen) * scale


@pytest.fixture(scope="module")
def learned(net16: Net) -> torch.Tensor:
    """A learned-style target: a Gram and a random decoder affine, (1, C, C + P)."""
    with torch.inference_mode():
        gram = net16.style_target(seeded_pixels(1, 3, 48, 40, seed=11))
    return targets.pack(gram, _affine(net16, 1))


def _eager(net: Net, content: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return net.stylize(content, target)


# ---------------------------------------------------------------------------- layout
def test_pack_and_split_are_inverse_and_refuse_other_widths(net16: Net):
    c, k = net16.channels, net16.affine_size
    gram, affine = torch.rand(2, c, c), torch.randn(2, 2, k)
    packed = targets.pack(gram, affine)
    assert packed.shape == (2, c, c + targets.extra_columns(c, k))
    g, a = targets.split(packed, k)
    assert torch.equal(g, gram) and torch.equal(a, affine)
    assert targets.split(gram, k) == (gram, None)
    assert targets.has_affine(packed) and not targets.has_affine(gram)
    with pytest.raises(ValueError, match="columns wide"):
        targets.split(torch.zeros(1, c, c + 1), k)
    with pytest.raises(ValueError, match="cannot narrow"):
        targets.widen(packed, c)


def test_decoder_norms_cover_every_norm_after_the_inspiration_layer(net16: Net):
    norms = net16.decoder_norms()
    assert len(norms) == 3 * net16.n_blocks + 3 * 2 + 1  # residual and up blocks, the head
    assert net16.affine_size == sum(n.num_features for n in norms)
    # no parameters: every checkpoint, the authors' included, loads as before
    assert all(not list(n.parameters()) for n in norms)


# ---------------------------------------------------------------------------- the passes
@pytest.mark.parametrize("hw", [(64, 64), (52, 76)])
def test_fast_runner_applies_the_affine_as_the_eager_model(net16, learned, hw):
    content = pad_to_multiple(seeded_pixels(1, 3, *hw, seed=sum(hw)))
    expected = _eager(net16, content, learned)
    gram_only = _eager(net16, content, learned[..., :net16.channels])
    assert expected.std() > 1.0  # a real picture, not a constant a wrong fold could hit
    assert (expected - gram_only).abs().mean() > 10 * ATOL  # the affine changes the picture
    torch.testing.assert_close(FastMSGNet(net16)(content, learned), expected, atol=ATOL, rtol=0)


def test_zero_affine_is_the_gram_alone_bit_for_bit(net16, learned):
    content = seeded_pixels(1, 3, 48, 48, seed=5)
    gram = learned[..., :net16.channels]
    wide = targets.widen(gram, learned.shape[-1])
    assert torch.equal(_eager(net16, content, wide), _eager(net16, content, gram))
    fast = FastMSGNet(net16)
    assert torch.equal(fast(content, wide), fast(content, gram))


def test_a_gram_after_a_learned_style_clears_its_affine(net16, learned):
    content = seeded_pixels(1, 3, 48, 48, seed=6)
    gram = learned[..., :net16.channels]
    before = _eager(net16, content, gram)
    _eager(net16, content, learned)
    assert torch.equal(_eager(net16, content, gram), before)


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "compile"])
def test_every_variant_stylizes_a_learned_style(net16, learned, name):
    content = pad_to_multiple(seeded_pixels(1, 3, 52, 60, seed=9))
    got = build_variant(name, net16)(content, learned)
    torch.testing.assert_close(got, _eager(net16, content, learned), atol=ATOL, rtol=0)


def test_tiles_replay_the_affine_too(net16, learned):
    content = seeded_pixels(1, 3, 96, 128, seed=4)
    runner = FastMSGNet(net16)
    config = TileConfig(tile=64, halo=16, blend=8, thumb_size=96)
    tiled = tiled_stylize_one(runner, content, learned[0], config)
    plain = tiled_stylize_one(runner, content, learned[0][..., :net16.channels], config)
    assert tiled.shape == (1, 3, 96, 128) and (tiled - plain).abs().mean() > 10 * ATOL


# ---------------------------------------------------------------------------- serving maths
@pytest.fixture(scope="module")
def stylizer(tmp_path_factory) -> Stylizer:
    path = make_tiny_weights(tmp_path_factory.mktemp("targets") / "w.pt")
    return Stylizer(load_weights(path), max_size=96, default_size=64)


def _learned_for(stylizer: Stylizer, seed: int) -> torch.Tensor:
    net = stylizer.net
    gram = stylizer.preset_target(stylizer.preset_names()[0])
    return targets.pack(gram, _affine(net, seed))


def test_a_batch_mixes_presets_and_learned_styles(stylizer):
    x = seeded_pixels(1, 3, 48, 64, seed=2)
    preset = stylizer.preset_target(stylizer.preset_names()[1])
    learned = _learned_for(stylizer, 3)
    together = stylizer.run([x, x], [preset, learned])
    alone = [stylizer.run([x], [t])[0] for t in (preset, learned)]
    for a, b in zip(together, alone, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_mixing_and_strength_move_the_affine_linearly(stylizer):
    preset = stylizer.preset_target(stylizer.preset_names()[1])
    learned = _learned_for(stylizer, 4)
    k = stylizer.net.affine_size
    _, affine = targets.split(learned, k)
    _, half = targets.split(mix_targets([preset, learned]), k)
    torch.testing.assert_close(half, affine / 2)
    _, quarter = targets.split(interpolate_target(preset, learned, 0.25), k)
    torch.testing.assert_close(quarter, affine / 4)
    x = seeded_pixels(1, 3, 48, 64, seed=8)
    out = stylizer.run([x], [learned], [Controls(strength=0.5, method="gram")])[0]
    assert out.shape == (1, 3, 48, 64) and torch.isfinite(out).all()


def test_stylizer_refuses_a_target_of_another_width(stylizer):
    c = stylizer.net.channels
    with pytest.raises(ValueError, match="learned style"):
        stylizer.run([seeded_pixels(1, 3, 32, 32, seed=1)], [torch.zeros(1, c, c + 1)])

"""Inference variants (msgnet.inference.variants, msgnet.inference.fast): the same function as the
eager model.

Tiny seeded nets (ngf 8/16) and small images keep this to seconds. Every rewrite in
:mod:`msgnet.inference.fast` is exact in real arithmetic, so the bound is float32 rounding: outputs
are 0..255 pixel values, and 1e-2 is far below one grey level yet far above what a wrong
rewrite (a missing bias, a dropped norm, a shifted upsample) produces.
"""

from __future__ import annotations

import os

import pytest
import torch
from weights_factory import make_net, seeded_pixels

from msgnet.inference.allocator import tune_allocator
from msgnet.inference.fast import FastMSGNet, compute_stats
from msgnet.inference.stylize import pad_to_multiple
from msgnet.inference.variants import DEFAULT_VARIANT, VARIANTS, build_variant
from msgnet.model.net import Net

pytestmark = pytest.mark.usefixtures("torch_single_thread")

ATOL = 1e-2  # pixel values 0..255; a wrong rewrite is off by whole grey levels
# torch.compile needs minutes of inductor codegen on 2 cores: opt in with MSGNET_TEST_COMPILE=1
COMPILE = os.environ.get("MSGNET_TEST_COMPILE") == "1"
CHEAP_VARIANTS = [name for name in VARIANTS if name != "compile"]


@pytest.fixture(scope="module")
def net16() -> Net:
    return make_net(16, seed=3)


@pytest.fixture(scope="module")
def grams(net16: Net) -> torch.Tensor:
    """Two different style targets, (2, C, C)."""
    with torch.inference_mode():
        return net16.style_target(seeded_pixels(2, 3, 48, 40, seed=11))


def _eager(net: Net, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return net.stylize(content, gram)


@pytest.mark.parametrize("name", CHEAP_VARIANTS + (["compile"] if COMPILE else []))
@pytest.mark.parametrize("hw", [(64, 64), (52, 76), (37, 50)])  # (37, 50): Stylizer pads it
def test_variant_equals_eager(net16: Net, grams: torch.Tensor, name: str,
                              hw: tuple[int, int]) -> None:
    variant = build_variant(name, net16)
    content = pad_to_multiple(seeded_pixels(1, 3, *hw, seed=sum(hw)))
    expected = _eager(net16, content, grams[:1])
    got = variant(content, grams[:1])
    assert got.shape == expected.shape
    assert expected.std() > 1.0  # a real picture, not a constant the rewrite could hit anyway
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", CHEAP_VARIANTS)
def test_batch_with_different_targets_equals_eager(net16: Net, grams: torch.Tensor,
                                                   name: str) -> None:
    variant = build_variant(name, net16)
    content = seeded_pixels(2, 3, 44, 60, seed=5)
    expected = _eager(net16, content, grams)
    got = variant(content, grams)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    # each item really used its own target
    assert (expected[0] - expected[1]).abs().max() > 1.0
    torch.testing.assert_close(variant(content[1:], grams[1:]), expected[1:], atol=ATOL, rtol=0)


def test_batch_with_one_shared_target_broadcasts(net16: Net, grams: torch.Tensor) -> None:
    runner = FastMSGNet(net16)
    content = seeded_pixels(3, 3, 32, 32, seed=9)
    torch.testing.assert_close(runner(content, grams[:1]), _eager(net16, content, grams[:1]),
                               atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="target batch 2 does not match content batch 3"):
        runner(content, grams)


@pytest.mark.parametrize("name", CHEAP_VARIANTS)
def test_style_target_equals_eager(net16: Net, name: str) -> None:
    style = seeded_pixels(1, 3, 56, 40, seed=21)
    with torch.inference_mode():
        expected = net16.style_target(style)
    got = build_variant(name, net16).style_target(style)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-4)


def test_fast_at_ngf8_with_nonsquare_input() -> None:
    net = make_net(8, seed=0)
    with torch.inference_mode():
        gram = net.style_target(seeded_pixels(1, 3, 32, 32, seed=1))
    content = seeded_pixels(1, 3, 28, 92, seed=2)
    torch.testing.assert_close(FastMSGNet(net)(content, gram), _eager(net, content, gram),
                               atol=ATOL, rtol=0)


@pytest.mark.parametrize("head_mode", ["rows", "direct"])
def test_output_convolution_formulations_equal_eager(net16: Net, grams: torch.Tensor,
                                                      head_mode: str) -> None:
    """The row-split 7x7 head (default) and the direct one are the same function."""
    content = seeded_pixels(1, 3, 40, 56, seed=13)
    runner = FastMSGNet(net16, head_mode=head_mode)
    torch.testing.assert_close(runner(content, grams[:1]), _eager(net16, content, grams[:1]),
                               atol=ATOL, rtol=0)


@pytest.mark.parametrize("conv3x3", ["winograd", "direct"])
def test_residual_convolution_formulations_equal_eager(net16: Net, grams: torch.Tensor,
                                                        conv3x3: str) -> None:
    """Winograd F(4x4, 3x3) (default) and oneDNN's direct 3x3 are the same function; the
    feature maps here (11x13) are not multiples of the 4x4 tile."""
    content = seeded_pixels(1, 3, 44, 52, seed=17)
    runner = FastMSGNet(net16, conv3x3=conv3x3)
    assert (runner.res[0].conv_b_winograd is not None) == (conv3x3 == "winograd")
    torch.testing.assert_close(runner(content, grams[:1]), _eager(net16, content, grams[:1]),
                               atol=ATOL, rtol=0)


def test_unknown_conv3x3_mode_is_refused(net16: Net) -> None:
    with pytest.raises(ValueError, match="unknown 3x3 mode 'fft'; known: winograd, direct"):
        FastMSGNet(net16, conv3x3="fft")


def test_unknown_head_mode_is_refused(net16: Net) -> None:
    with pytest.raises(ValueError, match="unknown head mode 'fft'; known: rows, direct"):
        FastMSGNet(net16, head_mode="fft")


def test_runner_copies_weights(net16: Net, grams: torch.Tensor) -> None:
    """Later changes to the module do not reach an existing runner (documented contract)."""
    net = make_net(8, seed=4)
    runner = FastMSGNet(net)
    content = seeded_pixels(1, 3, 32, 32, seed=4)
    with torch.inference_mode():
        gram = net.style_target(content)
    before = runner(content, gram)
    with torch.no_grad():
        net.model[-1].conv2d.bias.add_(50.0)
    torch.testing.assert_close(runner(content, gram), before)


def test_compute_stats_is_instance_norm_statistics() -> None:
    x = torch.randn(1, 5, 9, 7) * 3 + 2
    mean, var = compute_stats(x)
    torch.testing.assert_close(mean, x.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(var, x.var(dim=(0, 2, 3), unbiased=False))


def test_unknown_variant_lists_the_known_ones(net16: Net) -> None:
    with pytest.raises(KeyError, match="unknown inference variant 'turbo'; known: "):
        build_variant("turbo", net16)
    assert DEFAULT_VARIANT in VARIANTS


def test_tune_allocator_is_idempotent() -> None:
    assert tune_allocator() == tune_allocator()

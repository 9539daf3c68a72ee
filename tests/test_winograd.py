"""Winograd F(4x4, 3x3) (msgnet.inference.winograd) against torch's direct convolution.

Exact in real arithmetic, so the bound is float32 rounding relative to the output's scale;
a wrong transform matrix, tile offset or crop is off by the output's own magnitude.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from msgnet.inference import winograd

REL = 1e-4  # max |error| / max |output|; measured ~1e-5 at 128 channels


def _run(x: torch.Tensor, weight: torch.Tensor, band_tiles: int = winograd.BAND_TILES
         ) -> torch.Tensor:
    _, c, hp, wp = x.shape
    h, w = hp - 2, wp - 2
    buf, corner = winograd.input_buffer(c, h, w, x)
    corner.copy_(x)
    return winograd.conv3x3(buf, winograd.transform_weight(weight), h, w, band_tiles)


@pytest.mark.parametrize(("c", "k", "h", "w"), [
    (16, 16, 16, 16),   # whole tiles
    (8, 5, 7, 10),      # partial tiles in both directions, K != C
    (4, 4, 1, 1),       # one output pixel
    (32, 24, 13, 4),    # a single tile across
])
def test_equals_direct_convolution(c: int, k: int, h: int, w: int) -> None:
    gen = torch.Generator().manual_seed(c * 100 + h)
    x = torch.randn(1, c, h + 2, w + 2, generator=gen) * 10
    weight = torch.randn(k, c, 3, 3, generator=gen)
    expected = F.conv2d(x, weight)
    got = _run(x, weight)
    assert got.shape == expected.shape
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert (got - expected).abs().max() <= REL * expected.abs().max()


@pytest.mark.parametrize("band_tiles", [1, 12, 18])
def test_bands_give_the_same_result(band_tiles: int) -> None:
    """15x22 outputs: 4 tile rows of 6 tiles, the last row partial; bands of 1, 2 or 3 tile
    rows (the last band short) each cover every row exactly once."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 6, 17, 24, generator=gen)
    weight = torch.randn(6, 6, 3, 3, generator=gen)
    expected = F.conv2d(x, weight)
    banded = _run(x, weight, band_tiles=band_tiles)
    assert (banded - expected).abs().max() <= REL * expected.abs().max()


def test_margins_are_zero_whatever_the_allocator_left() -> None:
    """The spare tile and partial tiles read the margins: NaN there would poison the output
    (0 * NaN), so input_buffer must zero them."""
    c, h, w = 4, 5, 6
    buf, corner = winograd.input_buffer(c, h, w, torch.empty(0))
    assert corner.shape == (1, c, h + 2, w + 2)
    corner.fill_(float("nan"))
    assert torch.isnan(buf).sum() == corner.numel()  # everything else is 0
    assert buf.nan_to_num(0.0).abs().sum() == 0


def test_rejects_other_kernel_sizes_and_mismatched_buffers() -> None:
    with pytest.raises(ValueError, match="needs a 3x3 kernel"):
        winograd.transform_weight(torch.zeros(4, 4, 5, 5))
    buf, _ = winograd.input_buffer(4, 8, 8, torch.empty(0))
    with pytest.raises(ValueError, match="does not match"):
        winograd.conv3x3(buf, winograd.transform_weight(torch.zeros(4, 4, 3, 3)), 12, 8)
    with pytest.raises(ValueError, match="does not match"):
        winograd.conv3x3(buf, winograd.transform_weight(torch.zeros(4, 3, 3, 3)), 8, 8)

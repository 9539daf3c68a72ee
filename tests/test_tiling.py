"""Tiled inference (msgnet.inference.tiling): frozen statistics make the network local, so tiles
with a halo covering the receptive field reproduce the untiled frozen-statistics pass."""

from __future__ import annotations

import pytest
import torch
from weights_factory import make_net, seeded_pixels

from msgnet.inference.fast import FastMSGNet
from msgnet.inference.tiling import (
    TileConfig,
    TiledForward,
    ramp,
    receptive_field,
    record_stats,
    run_with_stats,
    spans,
    thumbnail,
    tiled_stylize_one,
)
from msgnet.model.net import Net

pytestmark = pytest.mark.usefixtures("torch_single_thread")

ATOL = 1e-2  # 0..255 pixel values, float32 rounding only


@pytest.fixture(scope="module")
def net() -> Net:
    return make_net(8, seed=5)


@pytest.fixture(scope="module")
def runner(net: Net) -> FastMSGNet:
    return FastMSGNet(net)


@pytest.fixture(scope="module")
def gram(net: Net) -> torch.Tensor:
    with torch.inference_mode():
        return net.style_target(seeded_pixels(1, 3, 48, 48, seed=6))[0]


@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    """Smooth structure plus noise, 212 x 180 (multiples of 4, not of the tile)."""
    yy, xx = torch.meshgrid(torch.arange(212.0), torch.arange(180.0), indexing="ij")
    base = torch.stack([xx / 180 * 200, yy / 212 * 200, (xx + yy) / 392 * 200])[None]
    return (base + seeded_pixels(1, 3, 212, 180, seed=7) * 0.2).clamp(0, 255)


def test_tiles_with_frozen_stats_equal_the_untiled_frozen_pass(runner, gram, content) -> None:
    config = TileConfig(threshold_pixels=0, tile=64, halo=40, blend=8, thumb_size=96)
    stats = record_stats(runner, thumbnail(content, config.thumb_size), gram)
    full = run_with_stats(runner, content, gram, stats)
    tiled = tiled_stylize_one(runner, content, gram, config, stats)
    assert len(spans(212, 64, 40, 8)) == 4 and len(spans(180, 64, 40, 8)) == 3
    assert full.std() > 1.0
    torch.testing.assert_close(tiled, full, atol=ATOL, rtol=0)


def test_a_halo_smaller_than_the_receptive_field_shows(runner, gram, content) -> None:
    """The comparison above can fail: with too little context the tiles differ."""
    config = TileConfig(threshold_pixels=0, tile=64, halo=8, blend=8, thumb_size=96)
    stats = record_stats(runner, thumbnail(content, config.thumb_size), gram)
    full = run_with_stats(runner, content, gram, stats)
    tiled = tiled_stylize_one(runner, content, gram, config, stats)
    assert (tiled - full).abs().max() > 1.0


def test_default_tiling_uses_thumbnail_stats_and_stays_close(runner, gram, content) -> None:
    config = TileConfig(threshold_pixels=0, tile=64, thumb_size=108)
    tiled = tiled_stylize_one(runner, content, gram, config)
    full = runner(content, gram)
    mse = ((tiled - full) ** 2).mean()
    psnr = 10 * torch.log10(255.0 ** 2 / mse)
    assert tiled.shape == full.shape and psnr > 20, float(psnr)


def test_receptive_field_is_covered_by_the_default_halo(runner) -> None:
    radius = receptive_field(runner, runner.channels)
    assert 30 <= radius <= TileConfig().halo, radius


@pytest.mark.parametrize("length,tile,blend", [(212, 64, 8), (520, 512, 16), (96, 32, 16),
                                               (64, 64, 16)])
def test_blend_weights_sum_to_one(length: int, tile: int, blend: int) -> None:
    total = torch.zeros(length)
    owned = torch.zeros(length)
    for span in spans(length, tile, 40, blend):
        a, b = span.keep
        w = ramp(span, length, blend)
        assert w.shape == (b - a,) and (w >= 0).all() and (w <= 1).all()
        total[a:b] += w
        owned[span.core[0]:span.core[1]] += 1
    torch.testing.assert_close(total, torch.ones(length))
    assert (owned == 1).all()  # the cores partition the axis


def test_tile_origins_keep_the_stride_grid() -> None:
    for span in spans(1000, 256, 40, 16):
        assert all(v % 4 == 0 or v == 1000 for v in (*span.core, *span.keep, *span.read))


def test_should_tile_threshold() -> None:
    config = TileConfig(threshold_pixels=1024 * 1024)
    assert not config.should_tile(1024, 1024)
    assert config.should_tile(1024, 1028)
    assert config.should_tile(2048, 2048)
    assert not config.should_tile(512, 2048)


@pytest.mark.parametrize("field,value", [("tile", 30), ("halo", -4), ("blend", 6),
                                         ("tile", 8), ("thumb_size", 8)])
def test_bad_tile_config_is_refused(field: str, value: int) -> None:
    with pytest.raises(ValueError):
        TileConfig(**{field: value})


def test_thumbnail_is_a_multiple_of_four_and_never_upscales() -> None:
    x = torch.zeros(1, 3, 300, 200)
    assert thumbnail(x, 150).shape[-2:] == (152, 100)
    assert thumbnail(x, 1024) is x


def test_tiled_forward_switches_above_the_threshold(runner, gram, content) -> None:
    fwd = TiledForward(runner, TileConfig(threshold_pixels=100 * 100, tile=64, thumb_size=96))
    small = content[:, :, :64, :64]
    torch.testing.assert_close(fwd(small, gram[None]), runner(small, gram[None]))
    assert fwd.tiled_calls == 0
    out = fwd(torch.cat([content, content.flip(-1)]), gram[None])
    assert out.shape == (2, 3, 212, 180) and fwd.tiled_calls == 2

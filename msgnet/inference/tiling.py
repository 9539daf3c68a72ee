"""Any output size in bounded memory: Thumbnail Instance Normalization over overlapping tiles.

Instance norm is the only non-local operation in MSG-Net, so a large image cannot simply be cut
into tiles: each tile would normalise with its own statistics and the tiles would not match.
Following Chen et al., "Towards Ultra-Resolution Neural Style Transfer via Thumbnail Instance
Normalization" (AAAI 2022), we

1. run the network once on a downscaled *thumbnail* and record every instance norm's per-channel
   mean and variance;
2. run overlapping tiles of the full-size image with those statistics frozen. With fixed
   statistics the network is a local operator, so a tile whose halo covers the receptive field
   (:func:`receptive_field`; 39 px for MSG-Net, measured, and derived by walking the layers
   back: 3 + 1 + 2 + 6*4 + 4 + 2 + 3) reproduces the corresponding part of the
   thumbnail-normalised full pass exactly, reflection padding at tile edges included;
3. blend neighbouring tiles linearly across a ``blend``-wide band on each side of their shared
   border (the weights sum to one, so identical tiles blend to themselves).

Memory is then bounded by the tile and the thumbnail, not by the image: the full-size tensors
kept are the input, the output (3 channels each) and nothing else.
Tile origins and sizes are multiples of 4, so the encoder's two stride-2 steps see the same
sampling grid as in the untiled pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from msgnet.inference.fast import FastMSGNet, Stats, compute_stats

MULTIPLE = 4  # the network's total stride


def _round_up(value: int, multiple: int = MULTIPLE) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class TileConfig:
    """When and how to tile. ``threshold_pixels`` switches tiling on (output H*W above it)."""

    threshold_pixels: int = 1024 * 1024
    tile: int = 512        # core tile side (output pixels each tile owns), multiple of 4
    halo: int = 40         # context on each side, >= the receptive field radius (39 px)
    blend: int = 16        # half-width of the feathered band between neighbouring tiles
    # longest side of the thumbnail the statistics come from; its pass is the memory peak of
    # a tiled run (measured at 2048², ngf=128: 1024 -> 1.6 GB RSS, 768 -> 1.0 GB)
    thumb_size: int = 768

    def __post_init__(self) -> None:
        for name in ("tile", "halo", "blend"):
            value = getattr(self, name)
            if value < 0 or value % MULTIPLE:
                raise ValueError(f"tiling {name} must be a non-negative multiple of "
                                 f"{MULTIPLE}, got {value}")
        if self.tile < 4 * MULTIPLE or self.tile < 2 * self.blend:
            raise ValueError(f"tile {self.tile} is too small (min 16 and >= 2 * blend)")
        if self.thumb_size < 4 * MULTIPLE:
            raise ValueError(f"thumb_size must be at least 16, got {self.thumb_size}")
        if self.threshold_pixels < 0:
            raise ValueError("threshold_pixels must be non-negative")

    def should_tile(self, height: int, width: int) -> bool:
        return height * width > self.threshold_pixels


# ---------------------------------------------------------------------------- statistics
class StatsRecorder:
    """``stats_fn`` that computes statistics and keeps them, in call order."""

    def __init__(self) -> None:
        self.stats: list[Stats] = []

    def __call__(self, x: torch.Tensor) -> Stats:
        mean, var = compute_stats(x)
        self.stats.append((mean, var))
        return mean, var


class StatsReplayer:
    """``stats_fn`` that hands out recorded statistics in the same order (one pass' worth)."""

    def __init__(self, stats: list[Stats]):
        self.stats = stats
        self.index = 0

    def __call__(self, x: torch.Tensor) -> Stats:
        if self.index >= len(self.stats):
            raise RuntimeError("more instance norms than recorded statistics")
        mean, var = self.stats[self.index]
        if mean.shape[0] != x.shape[1]:
            raise RuntimeError(f"recorded statistics for {mean.shape[0]} channels, "
                               f"layer has {x.shape[1]}")
        self.index += 1
        return mean, var


def thumbnail(content: torch.Tensor, longest: int) -> torch.Tensor:
    """Antialiased downscale to ``longest`` (never up), sides rounded to multiples of 4."""
    h, w = content.shape[-2:]
    scale = min(1.0, longest / max(h, w))
    th = max(4 * MULTIPLE, _round_up(round(h * scale)))
    tw = max(4 * MULTIPLE, _round_up(round(w * scale)))
    if (th, tw) == (h, w):
        return content
    return F.interpolate(content, size=(th, tw), mode="bilinear", align_corners=False,
                         antialias=True)


def record_stats(runner: FastMSGNet, content: torch.Tensor, gram: torch.Tensor) -> list[Stats]:
    """Every instance norm's statistics from one pass over ``content`` (1, 3, h, w)."""
    recorder = StatsRecorder()
    saved = runner.stats_fn
    runner.stats_fn = recorder
    try:
        with torch.inference_mode():
            runner.stylize_one(content, gram)
    finally:
        runner.stats_fn = saved
    return recorder.stats


def run_with_stats(runner: FastMSGNet, content: torch.Tensor, gram: torch.Tensor,
                   stats: list[Stats]) -> torch.Tensor:
    """One pass with frozen statistics (the tiles, or a thumbnail-normalised full pass)."""
    replayer = StatsReplayer(stats)
    saved = runner.stats_fn
    runner.stats_fn = replayer
    try:
        with torch.inference_mode():
            out = runner.stylize_one(content, gram)
    finally:
        runner.stats_fn = saved
    if replayer.index != len(stats):
        raise RuntimeError(f"used {replayer.index} of {len(stats)} recorded statistics")
    return out


# ---------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Span:
    """One tile along one axis: ``core`` it owns, ``keep`` it writes, ``read`` it computes."""

    core: tuple[int, int]
    keep: tuple[int, int]
    read: tuple[int, int]


def spans(length: int, tile: int, halo: int, blend: int) -> list[Span]:
    """Tiles along an axis of ``length`` (a multiple of 4)."""
    out = []
    for start in range(0, length, tile):
        end = min(length, start + tile)
        keep = (max(0, start - blend), min(length, end + blend))
        read = (max(0, keep[0] - halo), min(length, keep[1] + halo))
        out.append(Span((start, end), keep, read))
    return out


def ramp(span: Span, length: int, blend: int) -> torch.Tensor:
    """Blend weights over ``span.keep``: linear across each shared border, 1 elsewhere.

    A border at ``c`` is shared over ``[c - blend, c + blend)``; the two tiles' weights there
    are ``(c + blend - y - 0.5) / 2b`` and ``(y + 0.5 - c + blend) / 2b``, which sum to one.
    """
    a, b = span.keep
    y = torch.arange(a, b, dtype=torch.float32) + 0.5
    w = torch.ones(b - a)
    if blend:
        start, end = span.core
        if start > 0:
            w = torch.minimum(w, ((y - (start - blend)) / (2 * blend)).clamp(0, 1))
        if end < length:
            w = torch.minimum(w, (((end + blend) - y) / (2 * blend)).clamp(0, 1))
    return w


def receptive_field(runner: FastMSGNet, channels: int, size: int = 160) -> int:
    """Radius (px) of the frozen-statistics network's receptive field, measured.

    With frozen statistics every output pixel is a fixed function of the inputs around it, so
    changing one input pixel changes exactly the outputs within reach; the largest distance
    over the four positions modulo the network's stride is the radius. The probe runs the
    direct 3x3 convolutions: Winograd tiles (:mod:`msgnet.inference.winograd`) compute a 4x4 block
    of outputs from one 6x6 input block, so float rounding, though not the function, reaches a
    few pixels past the true receptive field.
    """
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, size, size, generator=gen) * 255
    gram = torch.eye(channels).unsqueeze(0) / channels
    mode, runner.conv3x3 = runner.conv3x3, "direct"
    try:
        stats = record_stats(runner, content, gram)
        base = run_with_stats(runner, content, gram, stats)
        radius = 0
        for offset in range(MULTIPLE):
            c = size // 2 + offset
            probe = content.clone()
            probe[:, :, c, c] += 50.0
            changed = (run_with_stats(runner, probe, gram, stats) != base).any(dim=1)[0]
            ys, xs = changed.nonzero(as_tuple=True)
            radius = max(radius, int((ys - c).abs().max()), int((xs - c).abs().max()))
    finally:
        runner.conv3x3 = mode
    return radius


# ---------------------------------------------------------------------------- tiled pass
def tiled_stylize_one(runner: FastMSGNet, content: torch.Tensor, gram: torch.Tensor,
                      config: TileConfig, stats: list[Stats] | None = None) -> torch.Tensor:
    """Stylize one (1, 3, H, W) image (H, W multiples of 4) tile by tile.

    ``stats`` (from :func:`record_stats`) defaults to the thumbnail's.
    """
    _, _, h, w = content.shape
    if h % MULTIPLE or w % MULTIPLE:
        raise ValueError(f"tiled input must be a multiple of {MULTIPLE} on both sides, "
                         f"got {h}x{w}")
    if stats is None:
        stats = record_stats(runner, thumbnail(content, config.thumb_size), gram)
    out = torch.zeros((1, 3, h, w), dtype=torch.float32)
    rows = spans(h, config.tile, config.halo, config.blend)
    cols = spans(w, config.tile, config.halo, config.blend)
    for ry in rows:
        wy = ramp(ry, h, config.blend)
        for rx in cols:
            wx = ramp(rx, w, config.blend)
            (y0, y1), (x0, x1) = ry.read, rx.read
            tile = run_with_stats(runner, content[:, :, y0:y1, x0:x1], gram, stats)
            (ky0, ky1), (kx0, kx1) = ry.keep, rx.keep
            kept = tile[:, :, ky0 - y0:ky1 - y0, kx0 - x0:kx1 - x0]
            out[:, :, ky0:ky1, kx0:kx1].addcmul_(kept, wy.view(-1, 1) * wx.view(1, -1))
            del tile, kept
    return out


class TiledForward:
    """A ``forward_fn`` for :class:`msgnet.inference.stylize.Stylizer`: plain passes for images up
    to ``config.threshold_pixels``, tiled passes above (each item of a batch on its own).

    ``plain`` runs the untiled passes (any variant; default ``runner`` itself). Tiles always go
    through ``runner``, a :class:`FastMSGNet`, because only it can replay frozen statistics.
    """

    def __init__(self, runner: FastMSGNet, config: TileConfig | None = None,
                 plain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        self.runner = runner
        self.config = config or TileConfig()
        self.plain = plain or runner
        self.tiled_calls = 0

    def __call__(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        if not self.config.should_tile(h, w):
            return self.plain(content, gram)
        grams = gram if gram.dim() == 3 else gram.unsqueeze(0)
        outs = []
        for i in range(content.shape[0]):
            g = grams[min(i, grams.shape[0] - 1)]
            outs.append(tiled_stylize_one(self.runner, content[i:i + 1].float(), g,
                                          self.config))
            self.tiled_calls += 1
        return torch.cat(outs)

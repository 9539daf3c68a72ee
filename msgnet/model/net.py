"""MSG-Net (Zhang & Dana, 2017): Multi-style Generative Network.

Module names and nesting follow the authors' ``experiments/net.py`` on purpose, so that their
released ``21styles.model`` loads by state-dict layout (see :mod:`msgnet.model.checkpoint`).
Conventions are the authors' too: the generator takes and returns BGR images in 0..255, and
the style target is the Gram matrix of the encoder (``model1``) features of the style image.
"""

from __future__ import annotations

import torch
from torch import nn

from msgnet.model import targets

EXPANSION = 4


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by C*H*W, the authors' definition (B, C, C)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat.bmm(flat.transpose(1, 2)) / (c * h * w)


class ConvLayer(nn.Module):
    """Reflection-padded convolution (no zero padding, so no border artefacts)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling followed by a reflection-padded convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 upsample: int | None = None):
        super().__init__()
        self.upsample = upsample
        if upsample:
            self.upsample_layer = nn.Upsample(scale_factor=upsample, mode="nearest")
        self.reflection_padding = kernel_size // 2
        if self.reflection_padding:
            self.reflection_pad = nn.ReflectionPad2d(self.reflection_padding)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = self.upsample_layer(x)
        if self.reflection_padding:
            x = self.reflection_pad(x)
        return self.conv2d(x)


class StyleNorm(nn.InstanceNorm2d):
    """The authors' InstanceNorm (no parameters, no running statistics), plus an optional
    per-style scale and shift set for each pass: a learned style's conditional instance norm
    (:mod:`msgnet.model.targets`). Without one it is exactly ``nn.InstanceNorm2d``; it adds nothing
    to the state dict, so every checkpoint loads as before."""

    def __init__(self, channels: int):
        super().__init__(channels, affine=False, track_running_stats=False)
        self.style_affine: torch.Tensor | None = None  # (B or 1, 2, C): log gamma, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.style_affine is None:
            return y
        a = self.style_affine[..., None, None]
        return y * a[:, 0].exp() + a[:, 1]


def instance_norm(channels: int) -> StyleNorm:
    """InstanceNorm without affine parameters or running statistics, as the authors use."""
    return StyleNorm(channels)


class Bottleneck(nn.Module):
    """Pre-activation bottleneck residual block (He et al., 2016)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: int | None = None):
        super().__init__()
        self.downsample = downsample
        if downsample is not None:
            self.residual_layer = nn.Conv2d(inplanes, planes * EXPANSION, kernel_size=1,
                                            stride=stride)
        self.conv_block = nn.Sequential(
            instance_norm(inplanes), nn.ReLU(inplace=True),
            nn.Conv2d(inplanes, planes, kernel_size=1, stride=1),
            instance_norm(planes), nn.ReLU(inplace=True),
            ConvLayer(planes, planes, kernel_size=3, stride=stride),
            instance_norm(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes * EXPANSION, kernel_size=1, stride=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual_layer(x) if self.downsample is not None else x
        return residual + self.conv_block(x)


class UpBottleneck(nn.Module):
    """Bottleneck block that doubles the resolution on both branches."""

    def __init__(self, inplanes: int, planes: int, stride: int = 2):
        super().__init__()
        self.residual_layer = UpsampleConvLayer(inplanes, planes * EXPANSION, kernel_size=1,
                                                stride=1, upsample=stride)
        self.conv_block = nn.Sequential(
            instance_norm(inplanes), nn.ReLU(inplace=True),
            nn.Conv2d(inplanes, planes, kernel_size=1, stride=1),
            instance_norm(planes), nn.ReLU(inplace=True),
            UpsampleConvLayer(planes, planes, kernel_size=3, stride=1, upsample=stride),
            instance_norm(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes * EXPANSION, kernel_size=1, stride=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual_layer(x) + self.conv_block(x)


class Inspiration(nn.Module):
    """CoMatch layer: mixes content features with the style's Gram matrix.

    ``target`` is (B or 1, C, C). It is a plain attribute, not a buffer, so it is not in the
    state dict (the authors' layout has only ``weight``).

    ``skip=True`` (ours, opt-in) adds a learned per-channel pass-through: the layer applies
    ``(W G)^T + SKIP_SCALE·diag(skip)``. ``P = W G`` inherits the encoder Grams' steep
    spectrum, so the authors' layer passes only ~10% of a photo's feature variation
    (docs/training.md); the diagonal lets the photo through whatever the style. It starts at
    zero, so a network trained without it resumes unchanged.

    ``skip="relative"`` scales the diagonal by ``‖W G‖_F`` instead of the fixed SKIP_SCALE:
    the top gain of ``W G`` varies 3× between presets (19-64 on the 8 200-step weights), and a
    gain relative to it moves as fast for every style (Adam: ~lr of ``‖W G‖`` a step).
    """

    def __init__(self, channels: int, skip: bool | str | None = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, channels, channels).uniform_(0.0, 0.02))
        self.skip_mode = skip_mode(skip)
        self.skip = nn.Parameter(torch.zeros(channels)) if self.skip_mode else None
        self.channels = channels
        self.target: torch.Tensor | None = None

    @property
    def skip_relative(self) -> bool:
        return self.skip_mode == "relative"

    def set_target(self, gram: torch.Tensor) -> None:
        self.target = gram

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.target is None:
            raise RuntimeError("Inspiration target is not set: call Net.set_target first")
        return inspire(x, self.weight, self.target, self.skip, self.skip_relative)


# P's singular values run from ~50 down to ~0.5 by the 20th (trained weights); Adam moves an
# entry by ~lr a step, so the skip is scaled to reach that range in hundreds of steps, not 10⁴
SKIP_SCALE = 10.0
SKIP_MODES = ("fixed", "relative")


def skip_mode(skip: bool | str | None) -> str | None:
    """The skip layout: None (the authors'), "fixed" (``True``: ×SKIP_SCALE) or "relative"."""
    if skip is None or skip is False:
        return None
    if skip is True:
        return "fixed"
    if skip not in SKIP_MODES:
        raise ValueError(f"unknown Inspiration skip {skip!r}; known: {', '.join(SKIP_MODES)}")
    return skip


def inspiration_matrix(weight: torch.Tensor, target: torch.Tensor,
                       skip: torch.Tensor | None = None, relative: bool = False
                       ) -> torch.Tensor:
    """``(W G)^T + k·diag(skip)``, k = SKIP_SCALE or (``relative``) ``‖W G‖_F`` per target:
    what the Inspiration layer multiplies features by."""
    p = torch.matmul(weight, target).transpose(-2, -1)
    if skip is None:
        return p
    if not relative:
        return p + torch.diag(SKIP_SCALE * skip)
    scale = torch.linalg.matrix_norm(p).unsqueeze(-1)  # (..., 1): one gain per target
    return p + torch.diag_embed(scale * skip)


def inspire(x: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
            skip: torch.Tensor | None = None, relative: bool = False) -> torch.Tensor:
    """Apply the Inspiration matrix to the flattened features; a target of batch 1 is broadcast."""
    b, c, h, w = x.shape
    p = inspiration_matrix(weight, target, skip, relative)
    if p.shape[0] != b:
        p = p.expand(b, c, c)
    return torch.bmm(p, x.reshape(b, c, h * w)).reshape(b, c, h, w)


class Net(nn.Module):
    """MSG-Net generator with its siamese encoder ``model1`` (shared with ``model[0]``)."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 128, n_blocks: int = 6,
                 inspiration_skip: bool | str | None = False):
        super().__init__()
        self.ngf = ngf
        self.n_blocks = n_blocks
        self.model1 = nn.Sequential(
            ConvLayer(input_nc, 64, kernel_size=7, stride=1),
            instance_norm(64), nn.ReLU(inplace=True),
            Bottleneck(64, 32, 2, 1),
            Bottleneck(32 * EXPANSION, ngf, 2, 1),
        )
        self.ins = Inspiration(ngf * EXPANSION, skip=inspiration_skip)
        layers: list[nn.Module] = [self.model1, self.ins]
        layers += [Bottleneck(ngf * EXPANSION, ngf, 1, None) for _ in range(n_blocks)]
        layers += [
            UpBottleneck(ngf * EXPANSION, 32, 2),
            UpBottleneck(32 * EXPANSION, 16, 2),
            instance_norm(16 * EXPANSION), nn.ReLU(inplace=True),
            ConvLayer(16 * EXPANSION, output_nc, kernel_size=7, stride=1),
        ]
        self.model = nn.Sequential(*layers)
        # a plain tuple, not registered again: found once, as set_target runs on every pass
        self._decoder_norms = tuple(m for m in self.model[2:].modules() if isinstance(m, StyleNorm))

    @property
    def channels(self) -> int:
        return self.ins.channels

    @property
    def inspiration_skip(self) -> bool:
        return self.ins.skip is not None

    @property
    def inspiration_skip_mode(self) -> str | None:
        """None, "fixed" or "relative" (:class:`Inspiration`)."""
        return self.ins.skip_mode

    def style_target(self, style_bgr: torch.Tensor) -> torch.Tensor:
        """Gram matrix of the encoder features of a BGR 0..255 style batch."""
        return gram_matrix(self.model1(style_bgr))

    def decoder_norms(self) -> list[StyleNorm]:
        """The instance norms after the Inspiration layer, in the order a pass runs them."""
        return list(self._decoder_norms)

    @property
    def affine_size(self) -> int:
        """``K``: the decoder norms' channels, each with a learned style's scale and shift."""
        return sum(n.num_features for n in self._decoder_norms)

    def set_affine(self, affine: torch.Tensor | None) -> None:
        """Give the decoder norms a (B or 1, 2, K) scale and shift, or None (the authors')."""
        start = 0
        for norm in self._decoder_norms:
            end = start + norm.num_features
            norm.style_affine = None if affine is None else affine[:, :, start:end]
            start = end

    def set_target(self, target: torch.Tensor) -> None:
        """A style target (:mod:`msgnet.model.targets`): the Gram, with a learned style's affine."""
        gram, affine = targets.split(target, self.affine_size)
        self.ins.set_target(gram)
        self.set_affine(affine)

    def forward(self, content_bgr: torch.Tensor) -> torch.Tensor:
        return self.model(content_bgr)

    def stylize(self, content_bgr: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Stylize a batch with a given target (batch 1 or the content's batch)."""
        self.set_target(target)
        return self.model(content_bgr)

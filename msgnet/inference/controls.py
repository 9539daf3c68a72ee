"""Style controls on top of one forward pass: strength, original colours, style mixes, brush.

MSG-Net's style is a Gram target for the Inspiration layer, so the controls are cheap maths on
targets (before the pass) or on pixels (after it), never extra passes:

* **mix** - several styles become one weighted Gram target (:func:`mix_targets`);
* **strength** - how far from the photo the output goes, 0..1. Two candidates were measured
  (``workbench/strength_figures.py``, numbers in ``docs/controls.md``): interpolating the target
  between the content's own encoder Gram and the style's (``"gram"``), and blending the
  stylized pixels with the photo's (``"pixels"``, the default, chosen by that measurement: only
  it gives the photo back at 0, and at 0.5 it is 16.4 dB from the photo against 10.2 dB);
* **keep colours** - the stylized luminance with the photo's chroma (YCbCr, BT.601);
* **brush** - small / medium / large strokes, mapped to the size the style image is encoded at
  (a smaller style image gives larger strokes relative to the photo).

Every function works on whole images, so the controls apply unchanged to tiled outputs: the
pixel ones run after :class:`msgnet.inference.tiling.TiledForward` has put the tiles together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from msgnet.inference.control_values import (
    BRUSHES,
    DEFAULT_STRENGTH_METHOD,
    MAX_STYLES,
    STRENGTH_METHODS,
    ControlError,
    brush_style_size,
    check_strength,
    normalise_weights,
    parse_weighted,
)
from msgnet.model.targets import widen_all

__all__ = ["BRUSHES", "DEFAULT_STRENGTH_METHOD", "MAX_STYLES", "STRENGTH_METHODS", "ControlError",
           "Controls", "apply_pixel_controls", "blend_pixels", "brush_style_size", "check_strength",
           "interpolate_target", "keep_colors", "luma", "mix_targets", "normalise_weights",
           "parse_weighted"]

# BT.601 luma of BGR pixels (JPEG's YCbCr); the chroma rows sum to zero, see keep_colors
LUMA_BGR = (0.114, 0.587, 0.299)


@dataclass(frozen=True)
class Controls:
    """Per-image controls applied by :meth:`msgnet.inference.stylize.Stylizer.run`."""

    strength: float = 1.0
    keep_colors: bool = False
    method: str = DEFAULT_STRENGTH_METHOD

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", check_strength(self.strength))
        if self.method not in STRENGTH_METHODS:
            raise ControlError("method", f"unknown strength method {self.method!r}; "
                                         f"use one of {', '.join(STRENGTH_METHODS)}")

    @property
    def needs_content_target(self) -> bool:
        """Whether the target must be moved toward the content's own Gram before the pass."""
        return self.method == "gram" and self.strength < 1.0

    @property
    def touches_pixels(self) -> bool:
        return self.keep_colors or (self.method == "pixels" and self.strength < 1.0)


DEFAULT_CONTROLS = Controls()


# ---------------------------------------------------------------------------- mixing
def mix_targets(targets: Sequence[torch.Tensor], weights: Sequence[float] | None = None
                ) -> torch.Tensor:
    """One Gram target from several: ``Σ wᵢ Gᵢ`` with the weights normalised (equal if None).

    A single style comes back as the very same tensor, so it equals today's output bit for bit.
    """
    if weights is None:
        weights = [1.0] * len(targets)
    if len(weights) != len(targets):
        raise ValueError(f"{len(targets)} style targets but {len(weights)} weights")
    normed = normalise_weights(weights)
    if len(targets) == 1:
        return targets[0]
    if len({t.shape[-2] for t in targets}) == 1:  # a learned style's affine: see targets.py
        targets = widen_all(targets)
    shape = targets[0].shape
    mixed = torch.zeros(shape, dtype=torch.float32, device=targets[0].device)
    for target, w in zip(targets, normed, strict=True):
        if target.shape != shape:
            raise ValueError(f"style targets differ in shape: {tuple(shape)} and "
                             f"{tuple(target.shape)}")
        mixed.add_(target.float(), alpha=w)
    return mixed


# ---------------------------------------------------------------------------- strength
def interpolate_target(content_target: torch.Tensor, style_target: torch.Tensor,
                       strength: float) -> torch.Tensor:
    """The ``"gram"`` candidate: ``(1 - s) G_content + s G_style`` (a learned style's affine
    goes ``s`` of the way from the identity, :mod:`msgnet.model.targets`)."""
    if strength >= 1.0:
        return style_target
    content_target, style_target = widen_all([content_target, style_target])
    return torch.lerp(content_target.float(), style_target.float(), float(strength))


def blend_pixels(stylized: torch.Tensor, photo: torch.Tensor, strength: float) -> torch.Tensor:
    """The ``"pixels"`` candidate: ``photo + s (stylized - photo)``, in place on ``stylized``."""
    if strength >= 1.0:
        return stylized
    return stylized.sub_(photo).mul_(float(strength)).add_(photo)


# ---------------------------------------------------------------------------- colours
def luma(bgr: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (B, 1, H, W) of a BGR batch."""
    b, g, r = LUMA_BGR
    return bgr[:, 0:1] * b + bgr[:, 1:2] * g + bgr[:, 2:3] * r


def keep_colors(stylized: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The stylized luminance with the photo's chroma (in place on ``stylized``).

    In YCbCr the chroma rows of the RGB->YCbCr matrix sum to zero, so adding the same amount to
    R, G and B moves Y alone: ``photo + (Y_stylized - Y_photo)`` has the stylized Y and the
    photo's Cb, Cr exactly (up to the clamp to 0..255 where that leaves the gamut).
    """
    delta = luma(stylized) - luma(photo)
    return stylized.copy_(photo).add_(delta).clamp_(0, 255)


def apply_pixel_controls(stylized: torch.Tensor, photo: torch.Tensor,
                         controls: Controls) -> torch.Tensor:
    """Strength (``"pixels"``) then colours, on one output and its photo of the same size."""
    if stylized.shape != photo.shape:
        raise ValueError(f"output {tuple(stylized.shape)} and photo {tuple(photo.shape)} differ")
    photo = photo.to(stylized.device, stylized.dtype)
    if controls.method == "pixels":
        stylized = blend_pixels(stylized, photo, controls.strength)
    if controls.keep_colors:
        stylized = keep_colors(stylized, photo)
    return stylized


# ---------------------------------------------------------------------------- brush

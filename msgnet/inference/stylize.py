"""In-process stylization: weights + presets + the batched forward pass, shared by the CLI and
the TorchServe handler.

The expensive parts are split so a server can cache and batch them: :meth:`Stylizer.style_target`
(the encoder, once per style), :meth:`Stylizer.prepare_content` (decode-side resizing) and
:meth:`Stylizer.run` (one forward pass per group of equally sized images, each with its own
style target). :attr:`Stylizer.forward_fn` is the only place the generator is called, so a
faster implementation of the same function can be swapped in without touching the rest:
it is the chosen inference variant (:mod:`msgnet.inference.variants`, default the fastest correct
one) wrapped in :class:`msgnet.inference.tiling.TiledForward`, which switches to tiled passes with
thumbnail statistics above a pixel threshold so that large outputs run in bounded memory.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from msgnet.imageio import bgr_to_image, fit_longest, image_to_bgr, resize_longest
from msgnet.inference.control_values import FALLBACK_STYLE_SIZE
from msgnet.inference.controls import (
    DEFAULT_CONTROLS,
    Controls,
    apply_pixel_controls,
    brush_style_size,
    interpolate_target,
)
from msgnet.inference.fast import FastMSGNet
from msgnet.inference.tiling import TileConfig, TiledForward
from msgnet.inference.variants import DEFAULT_VARIANT, FastVariant, build_variant
from msgnet.model.checkpoint import LoadedWeights, load_weights, weights_fingerprint
from msgnet.model.net import Net
from msgnet.model.predictor import ENCODER_SIZE as PREDICTOR_SIZE
from msgnet.model.targets import extra_columns, pack, widen_all

MIN_SIZE = 16  # the encoder downsamples x4 and pads by reflection: smaller is meaningless
MULTIPLE = 4   # inputs are padded to a multiple of this so the decoder lands on the same size
MIN_PASS_SIDE = 16  # the shortest side a forward pass gets (thin inputs are padded, then cropped)


def trained_style_size(metadata: dict) -> int:
    """The size the weights' encoder saw style images at in training, so that uploads are
    encoded the way the presets were: ``style_encoder_size`` in our files, else 512 (the
    recipe, and the authors' file)."""
    size = metadata.get("style_encoder_size") or (metadata.get("recipe") or {}).get("style_size")
    return int(size) if isinstance(size, int | float) and size > 0 else FALLBACK_STYLE_SIZE

ForwardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(content (B, 3, H, W) BGR, targets (B, C, C)) -> (B, 3, H, W)``; H, W multiples of 4."""


class UnknownPresetError(KeyError):
    """A preset name the loaded weights do not ship; ``str()`` lists the ones they do."""

    def __init__(self, name: str, available: list[str] | tuple[str, ...] = ()):
        super().__init__(name)
        self.name = name
        self.available = sorted(available)

    def __str__(self) -> str:
        if not self.available:
            return (f"unknown preset {self.name!r}: these weights ship no presets "
                    "(use a style image instead)")
        return f"unknown preset {self.name!r}; available: {', '.join(self.available)}"


def _check_bgr(t: torch.Tensor, what: str) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{what} must be a (1, 3, H, W) BGR tensor, got {shape}")


def resize_tensor_longest(t: torch.Tensor, longest: int) -> torch.Tensor:
    """Tensor counterpart of :func:`msgnet.imageio.resize_longest` (antialiased bilinear)."""
    h, w = t.shape[-2:]
    nw, nh = fit_longest(w, h, longest)
    if (nh, nw) == (h, w):
        return t
    return F.interpolate(t.float(), size=(nh, nw), mode="bilinear", align_corners=False,
                         antialias=True).clamp(0, 255)


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE,
                    min_side: int = MIN_PASS_SIDE) -> torch.Tensor:
    """Pad bottom/right by reflection so H and W are multiples of ``multiple`` and at least
    ``min_side``.

    The generator halves the resolution twice and doubles it twice; on other sizes its output
    would be rounded up to a multiple of 4 and no longer line up with the input. Its
    reflection pads need every side of the quarter-resolution map above 1 px, so a 10 000:1
    photo at 16 px (16x1) is padded to 16x16 and cropped back by the caller (found by
    tests/test_fuzz_inputs.py).
    """
    h, w = x.shape[-2:]
    ph = max(h + (-h) % multiple, min_side) - h
    pw = max(w + (-w) % multiple, min_side) - w
    if not (ph or pw):
        return x
    mode = "reflect" if h > ph and w > pw else "replicate"  # reflect needs pad < size
    return F.pad(x, (0, pw, 0, ph), mode=mode)



def run_model(net: Net, content: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``net`` on one (padded) picture and target, cropped back and clamped: the plain network,
    for previews and evaluation (serving goes through :class:`Stylizer`)."""
    h, w = content.shape[-2:]
    x = pad_to_multiple(content)
    with torch.inference_mode():
        return net.stylize(x, target)[..., :h, :w].clamp(0, 255)


class Stylizer:
    """A loaded MSG-Net ready to stylize: presets, size policy and a batched forward."""

    def __init__(self, loaded: LoadedWeights, device: str = "cpu", max_size: int = 2048,
                 default_size: int = 512, default_style_size: int | None = None,
                 variant: str = DEFAULT_VARIANT, tiling: TileConfig | None = None):
        if max_size < MIN_SIZE:
            raise ValueError(f"max_size must be at least {MIN_SIZE}, got {max_size}")
        self.device = torch.device(device)
        self.net = loaded.net.to(self.device).eval()
        channels = self.net.channels
        self.presets: dict[str, torch.Tensor] = {
            name: g.detach().to(self.device, torch.float32).reshape(1, channels, channels)
            for name, g in loaded.presets.items()}
        self.metadata = dict(loaded.metadata)
        self.layout = loaded.layout
        self.predictor = None if loaded.predictor is None else loaded.predictor.to(self.device)
        self._fingerprint: str | None = loaded.fingerprint  # computed once, if at all
        self.max_size = max_size
        self.default_size = self._check_size(default_size, max_size, "default size")
        if default_style_size is None:  # encode uploads as the presets were in training
            default_style_size = trained_style_size(self.metadata)
        self.max_style_size = max(max_size, default_style_size)
        self.default_style_size = self._check_size(default_style_size, self.max_style_size,
                                                   "default style size")
        self.max_batch = 8  # images of one shape per forward call; bounds peak memory
        # the variants and tiling are CPU code paths; elsewhere the eager model runs as is
        self.variant_name = variant if self.device.type == "cpu" else "eager"
        self.forward_fn: ForwardFn = self._eager_forward
        self.style_fn: Callable[[torch.Tensor], torch.Tensor] = self.net.style_target
        self.tiled: TiledForward | None = None
        if self.device.type == "cpu":
            impl = build_variant(variant, self.net)
            # another variant's tiling runner leaves the allocator alone: it is process-wide,
            # and an ``eager`` process must stay the baseline (jit and compile tune it anyway)
            runner = (impl.runner if isinstance(impl, FastVariant)
                      else FastMSGNet(self.net, allocator=False))
            self.tiled = TiledForward(runner, tiling or TileConfig(), plain=impl)
            self.forward_fn = self.tiled
            self.style_fn = impl.style_target

    @classmethod
    def from_file(cls, path: str | Path, **kw) -> Stylizer:
        """Load weights (ours or the official file) and wrap them."""
        return cls(load_weights(path, map_location="cpu"), **kw)

    @property
    def fingerprint(self) -> str:
        """The weights' fingerprint, which learned styles are keyed by
        (msgnet.learning.style_store)."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.net.state_dict())
        return self._fingerprint

    # ------------------------------------------------------------------ presets / styles
    def preset_names(self) -> list[str]:
        return sorted(self.presets)

    def preset_target(self, name: str) -> torch.Tensor:
        """The shipped Gram matrix of a preset, (1, C, C); :class:`UnknownPresetError` if none."""
        try:
            return self.presets[name]
        except KeyError:
            raise UnknownPresetError(name, self.preset_names()) from None

    def style_target(self, style: Image.Image | torch.Tensor,
                     style_size: int | None = None, predict: bool = True) -> torch.Tensor:
        """Gram matrix (1, C, C) of a style image resized to ``style_size`` (longest side);
        with a style predictor (and ``predict``), (1, C, C + P) with its decoder affine."""
        if style_size is None:
            style_size = self.default_style_size
        size = self._check_size(style_size, self.max_style_size, "style size")
        x = self._to_bgr(style, size, "style")
        if min(x.shape[-2:]) < MIN_PASS_SIDE:  # a 1000:1 style is 1 px thin: see pad_to_multiple
            x = pad_to_multiple(x)
        with torch.inference_mode():
            gram = self.style_fn(x.to(self.device, torch.float32)).float()
        if self.predictor is None or not predict:
            return gram
        return self._predicted(style, size, x, gram)

    def _predicted(self, style: Image.Image | torch.Tensor, size: int, x: torch.Tensor,
                   gram: torch.Tensor) -> torch.Tensor:
        """``gram`` with the decoder affine the style predictor gives the picture (seen at
        the predictor's own size, whatever size the Gram was taken at)."""
        if size != PREDICTOR_SIZE:
            x = self._to_bgr(style, PREDICTOR_SIZE, "style")
            if min(x.shape[-2:]) < MIN_PASS_SIDE:
                x = pad_to_multiple(x)
        with torch.inference_mode():
            x = x.to(self.device, torch.float32)
            g = gram if size == PREDICTOR_SIZE else self.style_fn(x).float()
            affine = self.predictor(self.predictor.describe(x, g, self.net.model1))
        return pack(gram, affine)

    def brush_style_size(self, brush: str) -> int:
        """The style size of a brush name (small / medium / large) for these settings."""
        return min(brush_style_size(brush, self.default_style_size), self.max_style_size)

    def content_target(self, content: torch.Tensor) -> torch.Tensor:
        """The photo's own encoder Gram (1, C, C), at most the default style size, so that a
        tiled 4096 px photo costs one small encoder pass (the ``"gram"`` strength method)."""
        x = resize_tensor_longest(content.detach().float(),
                                  min(self.default_style_size, max(content.shape[-2:])))
        with torch.inference_mode():
            return self.style_fn(pad_to_multiple(x).to(self.device, torch.float32)).float()

    # ------------------------------------------------------------------ content
    def prepare_content(self, img: Image.Image | torch.Tensor,
                        size: int | None = None) -> torch.Tensor:
        """(1, 3, h, w) BGR at the requested longest side, content aspect preserved (CPU)."""
        if size is None:
            size = self.default_size
        size = self._check_size(size, self.max_size, "size")
        return self._to_bgr(img, size, "content")

    @staticmethod
    def _to_bgr(img: Image.Image | torch.Tensor, size: int, what: str) -> torch.Tensor:
        if isinstance(img, Image.Image):
            return image_to_bgr(resize_longest(img, size))
        _check_bgr(img, what)
        return resize_tensor_longest(img.detach().float(), size)

    @staticmethod
    def _check_size(size: int, upper: int, what: str) -> int:
        if isinstance(size, bool):
            raise ValueError(f"{what} must be an integer number of pixels, got {size!r}")
        try:
            size = operator.index(size)
        except TypeError:
            raise ValueError(f"{what} must be an integer number of pixels, got {size!r}") from None
        if not MIN_SIZE <= size <= upper:
            raise ValueError(f"{what} must be between {MIN_SIZE} and {upper} pixels "
                             f"(longest side), got {size}")
        return size

    # ------------------------------------------------------------------ forward
    def _eager_forward(self, content: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.net.stylize(content, targets)

    def _as_target(self, target: torch.Tensor) -> torch.Tensor:
        """(1, C, C) Gram, or (1, C, C + P) with a learned style's affine (msgnet.model.targets)."""
        c = self.net.channels
        wide = c + extra_columns(c, self.net.affine_size)
        numel = target.numel() if isinstance(target, torch.Tensor) else -1
        if numel not in (c * c, c * wide):
            shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target)
            raise ValueError(f"style target must be a (1, {c}, {c}) Gram matrix "
                             f"(or (1, {c}, {wide}) for a learned style), got {shape}")
        return target.reshape(1, c, numel // c).to(self.device, torch.float32)

    def run(self, contents: list[torch.Tensor], targets: list[torch.Tensor],
            controls: list[Controls] | None = None) -> list[torch.Tensor]:
        """Stylize ``contents[i]`` with ``targets[i]``; outputs (1, 3, h, w) CPU, input order.

        Items of the same size share one forward call (each keeps its own target, so mixed
        styles batch fine); different sizes run as separate groups. Instance norm works per
        image, so the result equals running every item alone. ``controls[i]``
        (:mod:`msgnet.inference.controls`) moves item i's target before the pass and its pixels
        after, on the whole image, so they hold for tiled outputs too.
        """
        if len(contents) != len(targets):
            raise ValueError(f"{len(contents)} contents but {len(targets)} targets")
        if controls is None:
            controls = [DEFAULT_CONTROLS] * len(contents)
        if len(controls) != len(contents):
            raise ValueError(f"{len(contents)} contents but {len(controls)} controls")
        groups: dict[tuple[int, int], list[int]] = {}
        for i, content in enumerate(contents):
            _check_bgr(content, f"content {i}")
            groups.setdefault((int(content.shape[-2]), int(content.shape[-1])), []).append(i)
        grams = [self._as_target(t) for t in targets]
        for i, ctl in enumerate(controls):
            if ctl.needs_content_target:
                grams[i] = interpolate_target(self.content_target(contents[i]), grams[i],
                                              ctl.strength)
        outputs: list[torch.Tensor | None] = [None] * len(contents)
        with torch.inference_mode():
            for (h, w), members in groups.items():
                for start in range(0, len(members), self.max_batch):
                    chunk = members[start:start + self.max_batch]
                    # no copy for a lone item: at 4096 px every image-sized copy is 200 MB
                    x = (contents[chunk[0]] if len(chunk) == 1
                         else torch.cat([contents[i] for i in chunk]))
                    x = x.to(self.device, torch.float32)
                    g = torch.cat(widen_all([grams[i] for i in chunk]))
                    y = self.forward_fn(pad_to_multiple(x), g)[..., :h, :w].clamp_(0, 255)
                    y = y.to("cpu", torch.float32)
                    for j, i in enumerate(chunk):
                        outputs[i] = y[j:j + 1]
                        if controls[i].touches_pixels:
                            outputs[i] = apply_pixel_controls(y[j:j + 1], contents[i],
                                                              controls[i])
        return outputs  # type: ignore[return-value]

    def warm_up(self, size: int | None = None) -> float:
        """One forward of a ``size`` px square (default: the default size), so that the first
        real request does not pay for oneDNN's kernel set-up and the heap's first growth
        (measured through TorchServe at 512²: the first answer took 1.24 s, later ones 0.93 s).
        Changes no results; returns the seconds it took."""
        side = min(size or self.default_size, self.max_size)
        t = time.perf_counter()
        x = torch.linspace(0, 255, side * side).reshape(1, 1, side, side).expand(1, 3, -1, -1)
        target = (self.presets[self.preset_names()[0]] if self.presets
                  else self.style_target(x[..., :64, :64].contiguous()))
        self.run([x.contiguous()], [target])
        return time.perf_counter() - t

    def stylize(self, content: Image.Image, target: torch.Tensor | str,
                size: int | None = None, controls: Controls | None = None) -> Image.Image:
        """One image, one target (a Gram matrix or a preset name) -> stylized PIL image."""
        if isinstance(target, str):
            target = self.preset_target(target)
        x = self.prepare_content(content, size)
        return bgr_to_image(self.run([x], [target], [controls or DEFAULT_CONTROLS])[0])

"""Inference variants of the MSG-Net forward pass, selectable by name for serving and benchmarks.

Every variant is a callable ``(content_bgr (B,3,H,W), gram (B or 1, C, C)) -> (B,3,H,W)`` with
the eager model's conventions, plus ``style_target(style_bgr)``. They all compute the same
function (the tests compare each against ``eager``); they differ in speed and start-up cost:

* ``eager``   - :meth:`msgnet.model.net.Net.stylize` as written: the reference.
* ``eager-alloc`` - ``eager`` in a process with the tuned allocator
  (:func:`msgnet.inference.allocator.tune_allocator`): what the allocator alone is worth. The
  setting is process-wide, so a baseline must not share a process with ``fast``
  (``workbench/bench/`` runs each variant in its own process).
* ``fast``    - :class:`msgnet.inference.fast.FastMSGNet`: exact graph rewrites, channels_last,
folded
  norms, Winograd F(4x4, 3x3) residual convolutions, tuned allocator. The default: the fastest
  without start-up cost, and the one tiling needs (it can replay frozen instance-norm
  statistics).
* ``fast-direct`` - ``fast`` with oneDNN's direct 3x3 convolutions instead of Winograd's, kept
  to measure what the Winograd rewrite is worth.
* ``jit``     - the eager graph traced, frozen and passed through
  ``torch.jit.optimize_for_inference`` (oneDNN layouts, conv folding).
* ``compile`` - the eager graph through ``torch.compile`` (inductor, dynamic shapes, frozen
  weights); the first call compiles: 23 s with a warm inductor cache, 163 s cold, measured on
  2 cores, beyond the 20 s worker-start budget.

``workbench/bench/`` measures them side by side; ``docs/performance.md`` has the numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from msgnet.inference.allocator import tune_allocator
from msgnet.inference.fast import FastMSGNet
from msgnet.model.net import Net, inspire
from msgnet.model.targets import has_affine

DEFAULT_VARIANT = "fast"


class Variant:
    """Common interface: ``variant(content, gram)`` and ``variant.style_target(style)``."""

    name = "base"

    def __init__(self, net: Net):
        self.net = net.eval()

    def __call__(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def style_target(self, style: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.net.style_target(style)

    def eager(self, content: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The model as written: any target, a learned style's decoder affine included."""
        with torch.inference_mode():
            return self.net.stylize(content, target)


class EagerVariant(Variant):
    """The model as written (no allocator change: this is the baseline)."""

    name = "eager"

    def __call__(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        return self.eager(content, gram)


class EagerAllocVariant(EagerVariant):
    """The model as written, with the tuned allocator (process-wide, see
    :mod:`msgnet.inference.fast`)."""

    name = "eager-alloc"

    def __init__(self, net: Net):
        super().__init__(net)
        tune_allocator()


class FastVariant(Variant):
    """:class:`FastMSGNet` (see :mod:`msgnet.inference.allocator`)."""

    name = "fast"

    def __init__(self, net: Net):
        super().__init__(net)
        self.runner = FastMSGNet(net)

    def __call__(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        return self.runner(content, gram)

    def style_target(self, style: torch.Tensor) -> torch.Tensor:
        return self.runner.style_target(style)


class FastDirectVariant(FastVariant):
    """``fast`` with the residual blocks' 3x3 convolutions left to oneDNN (direct)."""

    name = "fast-direct"

    def __init__(self, net: Net):
        Variant.__init__(self, net)
        self.runner = FastMSGNet(net, conv3x3="direct")


class _Functional(nn.Module):
    """The generator with the style target as an input, so graphs can capture it."""

    def __init__(self, net: Net):
        super().__init__()
        self.encoder = net.model1
        self.weight = net.ins.weight
        self.skip = net.ins.skip
        self.skip_relative = net.ins.skip_relative
        self.rest = nn.Sequential(*list(net.model)[2:])

    def forward(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        return self.rest(inspire(self.encoder(content), self.weight, gram, self.skip,
                                 self.skip_relative))


def _per_item(gram: torch.Tensor, batch: int) -> torch.Tensor:
    gram = gram if gram.dim() == 3 else gram.unsqueeze(0)
    return gram.expand(batch, -1, -1).contiguous() if gram.shape[0] != batch else gram


class JitVariant(Variant):
    """Traced, frozen, ``optimize_for_inference``; traced once at a small size."""

    name = "jit"

    def __init__(self, net: Net):
        super().__init__(net)
        tune_allocator()
        example = (torch.rand(1, 3, 64, 64) * 255, net.style_target(torch.rand(1, 3, 64, 64)))
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # trace-time notes about shape checks and the deprecation of the jit API itself
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(_Functional(net).eval(), example, check_trace=False)
            self.module = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def __call__(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        if has_affine(gram):  # the graph takes a Gram; a learned style runs as written
            return self.eager(content, gram)
        with torch.no_grad():
            return self.module(content, _per_item(gram, content.shape[0]))


class CompileVariant(Variant):
    """``torch.compile`` with inductor, dynamic shapes and frozen weights."""

    name = "compile"

    def __init__(self, net: Net):
        super().__init__(net)
        tune_allocator()
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        self.module = torch.compile(_Functional(net).eval(), dynamic=True, fullgraph=True)

    def __call__(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        if has_affine(gram):  # the graph takes a Gram; a learned style runs as written
            return self.eager(content, gram)
        with torch.no_grad():
            return self.module(content, _per_item(gram, content.shape[0]))


VARIANTS: dict[str, Callable[[Net], Variant]] = {
    "eager": EagerVariant,
    "eager-alloc": EagerAllocVariant,
    "fast": FastVariant,
    "fast-direct": FastDirectVariant,
    "jit": JitVariant,
    "compile": CompileVariant,
}


def build_variant(name: str, net: Net) -> Variant:
    """Instantiate a variant by name (``KeyError`` lists the known names)."""
    try:
        factory = VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown inference variant {name!r}; known: {sorted(VARIANTS)}") from None
    return factory(net)

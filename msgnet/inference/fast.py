"""Fast CPU forward pass for MSG-Net: the same function as :class:`msgnet.model.net.Net`, rewritten.

Every rewrite is exact in real arithmetic; outputs differ from the eager model only by float
rounding (the tests hold them to it). They come from profiling the eager model on a 2-core AVX2
machine, where most of the time went to memory traffic and page faults, not to arithmetic:

* **Allocator.** glibc serves big blocks with fresh ``mmap`` pages, so every large temporary
  costs page faults and kernel zeroing, about as much as the convolutions at 512 px;
  :func:`msgnet.inference.allocator.tune_allocator` keeps freed blocks in the
  heap for reuse.
* **channels_last everywhere.** oneDNN runs NCHW convolutions through a reorder to its blocked
  layout and back; in NHWC it does not, and the per-channel statistics of instance norm come
  from one vectorised pass (``torch.batch_norm_update_stats``; ``var_mean`` is ~10x slower).
* **Instance norm + ReLU split around the next convolution.** ``relu((x - m) * r)`` with a
  per-channel ``r > 0`` is ``r * relu(x - m)``: ``relu(x - m)`` is computed in place (or straight
  into the reflection-padded buffer the convolution reads) and ``r`` is multiplied into the next
  convolution's weights (input channel ``c`` scaled by ``r[c]``). Where an instance norm follows
  that convolution (and in the head, via its bias) it is computed as ``max(x, m)``, one pass
  instead of two: the extra ``+ m`` is a per-channel constant the norm removes.
* **Biases are dropped where an instance norm follows.** Instance norm is blind to per-channel
  constants, and every tensor of the content path reaches the output only through linear maps
  followed by an instance norm, so only the last convolution's bias matters. (The style encoder
  keeps them: a Gram matrix is not shift-invariant.)
* **Residual additions happen inside the GEMM** (``addmm_`` into the residual buffer).
* **Inspiration folded into the encoder's last block.** ``P x`` with ``P = (W G)^T`` is linear and
  the encoder ends with two 1x1 convolutions, so ``P`` is multiplied into their weights (512x128
  each) and the 512x512 per-pixel product disappears. ``G`` stays a runtime input.
* **Nearest upsampling commutes with a 1x1 convolution**: the decoder's residual branch runs its
  convolution at the low resolution and is upsampled straight into the output buffer.
* **The 7x7 output convolution is split by kernel row** (``head="rows"``, the default): a 1x7
  convolution computes the 7 rows' partial sums for the 3 outputs as 21 channels (padded to 24),
  and a 7x1 convolution with 0/1 weights adds each output's 7 partials from 7 rows. Exact up to
  the order of the sums (the 0 weights add exact zeros). oneDNN's AVX2 kernels block outputs by
  8, so the direct convolution (``head="direct"``, padded from 3 to 8 outputs) does 8/3 of the
  needed work; the split does 24/21 plus a small 24 -> 8 pass (measured about 0.45x the time).
* **The residual blocks' 3x3 convolutions use Winograd's F(4x4, 3x3)** (``conv3x3="winograd"``,
  the default; :mod:`msgnet.inference.winograd`): a quarter of the multiplications; 0.76 to 0.89x
  the time of oneDNN's direct kernel at 128 channels, 4 to 9% of the whole pass. The input
  channels' pending scale ``r`` multiplies the transformed weight (it commutes with the
  spatial transform). The other 3x3 convolutions
  stay direct: stride 2, or 16-32 channels, where the transforms cost more than they save.

Batches run one item at a time: each item has its own target and so its own folded weights,
and peak memory does not grow with the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from msgnet.inference import fast_ops as ops
from msgnet.inference import winograd
from msgnet.inference.allocator import tune_allocator
from msgnet.inference.fast_ops import CL
from msgnet.model import targets
from msgnet.model.net import (
    ConvLayer,
    Net,
    gram_matrix,
    inspiration_matrix,
)

EPS = 1e-5  # torch.nn.InstanceNorm2d's default, used by the model
HEAD_MODES = ("rows", "direct")  # output convolution: split by kernel row, or one 7x7
CONV3X3_MODES = ("winograd", "direct")  # residual blocks' 3x3: F(4x4, 3x3), or oneDNN's

Stats = tuple[torch.Tensor, torch.Tensor]  # per-channel (mean, biased variance), each (C,)
StatsFn = Callable[[torch.Tensor], Stats]
Affine = tuple[torch.Tensor, torch.Tensor]  # a learned style's (log gamma, beta) of one norm


def compute_stats(x: torch.Tensor) -> Stats:
    """Per-channel mean and biased variance of a (1, C, H, W) tensor, as instance norm uses."""
    return torch.batch_norm_update_stats(x, None, None, 1.0)


# ---------------------------------------------------------------------------- the runner
class FastMSGNet:
    """``(content_bgr (B,3,H,W), gram (B or 1, C, C)) -> (B,3,H,W)``, the same function as
    ``Net.stylize`` (H and W multiples of 4, as for the eager model).

    ``stats_fn`` gives every instance norm its statistics, in network order; the tiled path
    (:mod:`msgnet.inference.tiling`) swaps it to record them on a thumbnail and replay them on
    tiles. The weights are copied: later changes to ``net`` do not reach this runner. ``head_mode``
    picks the output convolution's formulation (``"rows"`` or ``"direct"``, same result), and
    ``conv3x3`` the residual blocks' 3x3 one (``"winograd"`` or ``"direct"``, same result).
    """

    name = "fast"

    def __init__(self, net: Net, allocator: bool = True, head_mode: str = "rows",
                 conv3x3: str = "winograd"):
        if allocator:
            tune_allocator()
        enc = net.model1
        model = list(net.model)
        head = model[-1]
        if not isinstance(head, ConvLayer) or len(model) != net.n_blocks + 7:
            raise TypeError("unexpected MSG-Net layout")
        self.channels = net.channels
        self.affine_size = net.affine_size
        self.norm_channels = [n.num_features for n in net.decoder_norms()]
        self.ins_weight = net.ins.weight.detach().float()[0].clone()
        self.ins_skip = None if net.ins.skip is None else net.ins.skip.detach().float().clone()
        self.ins_skip_relative = net.ins.skip_relative
        self.conv_in = ops.wkxk(enc[0].conv2d)  # its bias is irrelevant: an instance norm follows
        self.pad_in = enc[0].conv2d.kernel_size[0] // 2
        self.enc = [ops.block_weights(enc[3]), ops.block_weights(enc[4])]
        self.res = [ops.block_weights(m) for m in model[2:2 + net.n_blocks]]
        if conv3x3 not in CONV3X3_MODES:
            raise ValueError(f"unknown 3x3 mode {conv3x3!r}; known: {', '.join(CONV3X3_MODES)}")
        self.conv3x3 = conv3x3
        if conv3x3 == "winograd":
            for blk in self.res:
                blk.conv_b_winograd = winograd.transform_weight(blk.conv_b)
        self.up = [ops.block_weights(m) for m in model[2 + net.n_blocks:4 + net.n_blocks]]
        if head_mode not in HEAD_MODES:
            raise ValueError(f"unknown head mode {head_mode!r}; known: {', '.join(HEAD_MODES)}")
        self.head_mode = head_mode
        out_w, out_b = head.conv2d.weight.detach().float(), ops.bias(head.conv2d)
        self.out_channels = out_w.shape[0]
        self.conv_out = ops.pad_out_channels(out_w).contiguous(memory_format=CL)
        self.conv_out_bias = ops.pad_out_channels(out_b)
        self.conv_out_rows, self.conv_out_sum = ops.row_split(out_w)
        self.pad_out = head.conv2d.kernel_size[0] // 2
        self.stats_fn: StatsFn = compute_stats

    # ------------------------------------------------------------------ public API
    def __call__(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        return self.stylize(content, gram)

    def stylize(self, content: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        b = content.shape[0]
        if gram.dim() == 2:
            gram = gram.unsqueeze(0)
        if gram.shape[0] not in (1, b):
            raise ValueError(f"target batch {gram.shape[0]} does not match content batch {b}")
        with torch.inference_mode():
            outs = [self.stylize_one(content[i:i + 1], gram[min(i, gram.shape[0] - 1)])
                    for i in range(b)]
        return outs[0] if b == 1 else torch.cat(outs)

    def style_target(self, style: torch.Tensor) -> torch.Tensor:
        """Gram matrix of the encoder features, as ``Net.style_target`` (biases kept)."""
        with torch.inference_mode():
            feats = [self._encode(style[i:i + 1].float(), exact=True)
                     for i in range(style.shape[0])]
            return torch.cat([gram_matrix(f.contiguous()) for f in feats])

    def inspiration(self, gram: torch.Tensor) -> torch.Tensor:
        """``P = (W G)^T (+ diag(skip))``: the Inspiration layer as a (C, C) 1x1-conv weight."""
        return inspiration_matrix(self.ins_weight,
                                  gram.float().reshape(self.channels, self.channels),
                                  self.ins_skip, self.ins_skip_relative)

    def stylize_one(self, content: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One image (1, 3, H, W) with one target (C, C[+P]) or (1, C, C[+P]): a Gram, or a
        learned style's Gram and decoder affine (:mod:`msgnet.model.targets`)."""
        gram, affine = targets.split(target.reshape(1, *target.shape[-2:]), self.affine_size)
        norms = self._decoder_affine(affine)
        x = self._encode(content.float(), exact=False, p=self.inspiration(gram))
        for blk in self.res:
            x = self._bottleneck(x, blk, norms)
        for blk in self.up:
            x = self._up_bottleneck(x, blk, norms)
        padded, m, r = self._head_input(x, next(norms))
        del x  # its memory takes the head's temporaries instead of fresh pages
        return self._head(padded, m, r)

    # ------------------------------------------------------------------ pieces
    def _decoder_affine(self, affine: torch.Tensor | None) -> Iterator[Affine | None]:
        """Each decoder norm's (log gamma, beta), in pass order (None: the plain norm)."""
        if affine is None:
            return iter([None] * len(self.norm_channels))
        parts = torch.split(affine[0].float(), self.norm_channels, dim=-1)
        return iter([(a[0], a[1]) for a in parts])

    def _stats(self, x: torch.Tensor, affine: Affine | None = None) -> Stats:
        """(m, r) of one instance norm: its output is ``r * (x - m)`` before the ReLU.

        Plain, ``m`` is the mean and ``r`` 1/std. A style's ``gamma * norm(x) + beta`` with
        gamma > 0 is ``(gamma r) * (x - (m - beta / (gamma r)))``: the same form, so every fold
        below (scales into the next weights, ``max(x, m)``) holds unchanged.
        """
        mean, var = self.stats_fn(x)
        r = torch.rsqrt(var + EPS)
        if affine is None:
            return mean, r
        log_gamma, beta = affine
        r = r * log_gamma.exp()
        return mean - beta / r, r

    def _encode(self, x: torch.Tensor, exact: bool, p: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Encoder ``model1``; ``p`` folds the Inspiration layer into its last block.

        ``exact=False`` leaves out per-channel constants, fine wherever an instance norm follows.
        """
        pad = self.pad_in
        h = F.pad(x, (pad, pad, pad, pad), mode="reflect").contiguous(memory_format=CL)
        h = F.conv2d(h, self.conv_in)
        m, r = self._stats(h)
        h = ops.relu_sub_(h, m)  # the true activation is r * h; r goes into the next weights
        h = self._down_bottleneck(h, self.enc[0], r, exact, None)
        return self._down_bottleneck(h, self.enc[1], None, exact, p)

    def _down_bottleneck(self, x: torch.Tensor, blk: ops.Block, r_in: torch.Tensor | None,
                         exact: bool, p: torch.Tensor | None) -> torch.Tensor:
        """Encoder bottleneck (stride 2, projected residual) on the true input ``r_in * x``."""
        res_w = blk.residual if r_in is None else ops.scale_in(blk.residual, r_in)
        if p is not None:
            res_w = p @ res_w
        residual = ops.conv1x1(x, res_w, stride=2)
        m, r = self._stats(x)  # instance norm ignores the pending per-channel scale r_in
        y = ops.conv1x1(ops.max_(x, m), ops.scale_in(blk.conv_a, r))  # a norm follows: max_padded
        m, r = self._stats(y)
        y = F.conv2d(ops.max_padded(y, m, 1), ops.scale_in(blk.conv_b, r), None, blk.stride)
        m, r = self._stats(y)
        w_c = ops.scale_in(blk.conv_c, r)
        if p is not None:
            w_c = p @ w_c
        out = ops.addmm_(residual, ops.relu_sub_(y, m), w_c)
        if exact:
            const = blk.bias_residual + blk.bias_c
            out.add_((const if p is None else p @ const).view(1, -1, 1, 1))
        return out

    def _bottleneck(self, x: torch.Tensor, blk: ops.Block, norms: Iterator[Affine | None]
                    ) -> torch.Tensor:
        """Identity-residual bottleneck; adds into the stream ``x`` in place."""
        m, r = self._stats(x, next(norms))
        z = torch.maximum(x, m.view(1, -1, 1, 1))  # a norm follows: max_padded
        y = ops.conv1x1(z, ops.scale_in(blk.conv_a, r))
        del z
        m, r = self._stats(y, next(norms))
        y = self._conv3x3(y, m, r, blk)
        m, r = self._stats(y, next(norms))
        return ops.addmm_(x, ops.relu_sub_(y, m), ops.scale_in(blk.conv_c, r))

    def _conv3x3(self, y: torch.Tensor, m: torch.Tensor, r: torch.Tensor, blk: ops.Block
                 ) -> torch.Tensor:
        """A residual block's 3x3 convolution of ``r * relu(y - m)``, reflection-padded."""
        if self.conv3x3 != "winograd" or blk.conv_b_winograd is None:
            return F.conv2d(ops.max_padded(y, m, 1), ops.scale_in(blk.conv_b, r))
        _, c, h, w = y.shape
        buf, corner = winograd.input_buffer(c, h, w, y)
        ops.max_padded(y, m, 1, out=corner)
        # scaling input channels commutes with the spatial transform: scale the rows of u
        return winograd.conv3x3(buf, blk.conv_b_winograd * r.view(1, -1, 1), h, w)

    def _up_bottleneck(self, x: torch.Tensor, blk: ops.Block, norms: Iterator[Affine | None]
                       ) -> torch.Tensor:
        """Upsampling bottleneck; its residual 1x1 runs before the upsampling."""
        n, _, h, w = x.shape
        low = ops.conv1x1(x, blk.residual)
        m, r = self._stats(x, next(norms))
        y = ops.conv1x1(ops.max_(x, m), ops.scale_in(blk.conv_a, r))  # a norm follows
        m, r = self._stats(y, next(norms))
        y = F.conv2d(ops.max_padded(y, m, 1, upsample=True), ops.scale_in(blk.conv_b, r))
        m, r = self._stats(y, next(norms))
        c = low.shape[1]
        out = ops.empty_cl(n, c, 2 * h, 2 * w, x)
        ops.nhwc(out).unflatten(2, (w, 2)).unflatten(1, (h, 2)).copy_(
            ops.nhwc(low).reshape(n, h, 1, w, 1, c).expand(n, h, 2, w, 2, c))
        return ops.addmm_(out, ops.relu_sub_(y, m), ops.scale_in(blk.conv_c, r))

    def _head_input(self, x: torch.Tensor, affine: Affine | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Last norm+ReLU as ``max(x, m)`` into the reflection-padded buffer, with ``m`` and
        the pending scale ``r``."""
        m, r = self._stats(x, affine)
        return ops.max_padded(x, m, self.pad_out), m, r

    def _head(self, padded: torch.Tensor, m: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """The 7x7 output convolution on ``r * (padded - m)``; its bias is the one that
        matters, and it absorbs the ``- m`` (the convolution of a per-channel constant)."""
        bias = self.conv_out_bias - self.conv_out.sum(dim=(2, 3)) @ (r * m)
        if self.head_mode == "direct":
            y = F.conv2d(padded, ops.scale_in(self.conv_out, r), bias)
        else:
            rows = F.conv2d(padded, ops.scale_in(self.conv_out_rows, r))
            del padded
            y = F.conv2d(rows, self.conv_out_sum, bias)
        return y[:, :self.out_channels].contiguous()

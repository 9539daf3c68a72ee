"""Fast CPU forward pass for MSG-Net: the same function as :class:`msgnet.model.net.Net`, rewritten.

Every rewrite is exact in real arithmetic; outputs differ from the eager model only by float
rounding (the tests hold them to it). They come from profiling the eager model on a 2-core AVX2
machine, where most of the time went to memory traffic and page faults, not to arithmetic:

* **Allocator.** glibc serves big blocks with fresh ``mmap`` pages, so every large temporary
  costs page faults and kernel zeroing, about as much as the convolutions at 512 px;
  :func:`tune_allocator` keeps freed blocks in the heap for reuse.
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

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from msgnet.inference import winograd
from msgnet.model import targets
from msgnet.model.net import (
    Bottleneck,
    ConvLayer,
    Net,
    UpBottleneck,
    gram_matrix,
    inspiration_matrix,
)

EPS = 1e-5  # torch.nn.InstanceNorm2d's default, used by the model
CL = torch.channels_last
OUT_BLOCK = 8  # oneDNN AVX2 convolution kernels block output channels by 8
HEAD_MODES = ("rows", "direct")  # output convolution: split by kernel row, or one 7x7
CONV3X3_MODES = ("winograd", "direct")  # residual blocks' 3x3: F(4x4, 3x3), or oneDNN's

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_allocator_lock = threading.Lock()
_allocator_tuned = False

Stats = tuple[torch.Tensor, torch.Tensor]  # per-channel (mean, biased variance), each (C,)
StatsFn = Callable[[torch.Tensor], Stats]
Affine = tuple[torch.Tensor, torch.Tensor]  # a learned style's (log gamma, beta) of one norm


def tune_allocator(keep_bytes: int = 1 << 30) -> bool:
    """Serve large tensors from the malloc heap instead of fresh mmap pages (glibc only).

    Up to ``keep_bytes`` of freed memory stays mapped for reuse (``M_TRIM_THRESHOLD``); beyond
    that glibc gives it back, so the resident size after a big request falls again. Process-wide
    and idempotent; returns False where mallopt is unavailable (then nothing changes).
    """
    global _allocator_tuned
    with _allocator_lock:
        if _allocator_tuned:
            return True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, int(keep_bytes)) == 1
        _allocator_tuned = ok
        return ok


def allocator_tuned() -> bool:
    """Whether :func:`tune_allocator` has changed this process's allocator (benchmarks report
    it: the setting is process-wide and speeds up every model in the process)."""
    return _allocator_tuned


def compute_stats(x: torch.Tensor) -> Stats:
    """Per-channel mean and biased variance of a (1, C, H, W) tensor, as instance norm uses."""
    return torch.batch_norm_update_stats(x, None, None, 1.0)


# ---------------------------------------------------------------------------- tensor helpers
def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _addmm_(acc: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``acc += conv1x1(x, w)`` inside the GEMM; both channels_last, ``w`` is (Cout, Cin)."""
    n, c, h, wd = x.shape
    _nhwc(acc).view(n * h * wd, acc.shape[1]).addmm_(_nhwc(x).reshape(n * h * wd, c), w.t())
    return acc


def _conv1x1(x: torch.Tensor, w: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """1x1 convolution with a (Cout, Cin) weight (oneDNN beats a GEMM on tall-skinny shapes)."""
    return F.conv2d(x, w.view(*w.shape, 1, 1), None, stride)


def _empty_cl(n: int, c: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    return torch.empty((n, c, h, w), dtype=like.dtype, device=like.device, memory_format=CL)


def _relu_sub_(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x = relu(x - m)`` in place, ``m`` per channel (C,)."""
    return x.sub_(m.view(1, -1, 1, 1)).relu_()


def _reflect_borders_(buf: torch.Tensor, pad: int) -> None:
    """Fill the ``pad``-wide border of ``buf`` by reflecting its interior (as ReflectionPad2d)."""
    h, w = buf.shape[2] - 2 * pad, buf.shape[3] - 2 * pad
    if pad >= h or pad >= w:
        raise ValueError(f"reflection padding {pad} needs an input larger than {h}x{w}")
    bottom, right = pad + h - 1, pad + w - 1
    cols = slice(pad, right + 1)
    for i in range(1, pad + 1):
        buf[:, :, pad - i, cols] = buf[:, :, pad + i, cols]
        buf[:, :, bottom + i, cols] = buf[:, :, bottom - i, cols]
    for i in range(1, pad + 1):
        buf[:, :, :, pad - i] = buf[:, :, :, pad + i]
        buf[:, :, :, right + i] = buf[:, :, :, right - i]


def _max_(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x = max(x, m) = relu(x - m) + m`` in place, ``m`` per channel (C,); see
    :func:`_max_padded` for why the ``+ m`` may stay."""
    return x.clamp_min_(m.view(1, -1, 1, 1))


def _max_padded(x: torch.Tensor, m: torch.Tensor, pad: int, upsample: bool = False,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """``reflect_pad(upsample2x?(max(x, m)))`` written into ``out`` (a (N, C, H', W') view, as
    :func:`msgnet.inference.winograd.input_buffer` gives) or a new channels_last buffer.

    ``max(x, m) = relu(x - m) + m``: one pass instead of a subtraction and a ReLU. Through a
    convolution the ``+ m`` becomes a per-output-channel constant (the same at every pixel,
    reflection included), which an instance norm after it removes, or a bias corrects.
    Nearest upsampling and reflection both only copy values, so they commute with the
    per-channel ``max``, which writes straight into the padded interior.
    """
    n, c, h, w = x.shape
    oh, ow = (2 * h, 2 * w) if upsample else (h, w)
    buf = _empty_cl(n, c, oh + 2 * pad, ow + 2 * pad, x) if out is None else out
    inner = buf[:, :, pad:pad + oh, pad:pad + ow]
    if upsample:
        src = _nhwc(x).reshape(n, h, 1, w, 1, c).expand(n, h, 2, w, 2, c)
        torch.maximum(src, m, out=_nhwc(inner).unflatten(2, (w, 2)).unflatten(1, (h, 2)))
    else:
        torch.maximum(x, m.view(1, c, 1, 1), out=inner)
    _reflect_borders_(buf, pad)
    return buf


# ---------------------------------------------------------------------------- weights
@dataclass
class _Block:
    """One (Up)Bottleneck's weights: 1x1 as (Cout, Cin), 3x3 channels_last."""

    conv_a: torch.Tensor           # 1x1 after the block's first norm
    conv_b: torch.Tensor           # 3x3 (stride 2 in the encoder; after an upsample in Up)
    conv_c: torch.Tensor           # 1x1 expansion into the residual stream
    bias_c: torch.Tensor
    residual: torch.Tensor | None  # 1x1 projection of the residual (None: identity)
    bias_residual: torch.Tensor | None
    stride: int
    conv_b_winograd: torch.Tensor | None = None  # conv_b as (36, Cin, Cout), residual blocks


def _w1x1(conv: torch.nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().float().reshape(conv.out_channels, conv.in_channels).clone()


def _wkxk(conv: torch.nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().float().contiguous(memory_format=CL).clone()


def _bias(conv: torch.nn.Conv2d) -> torch.Tensor:
    return conv.bias.detach().float().clone()


def _block_weights(block: Bottleneck | UpBottleneck) -> _Block:
    seq = block.conv_block
    conv_b = seq[5].conv2d
    if isinstance(block, UpBottleneck):
        residual: torch.nn.Conv2d | None = block.residual_layer.conv2d
    else:
        residual = block.residual_layer if block.downsample is not None else None
    return _Block(conv_a=_w1x1(seq[2]), conv_b=_wkxk(conv_b), conv_c=_w1x1(seq[8]),
                  bias_c=_bias(seq[8]),
                  residual=_w1x1(residual) if residual is not None else None,
                  bias_residual=_bias(residual) if residual is not None else None,
                  stride=conv_b.stride[0])


def _scale_in(w: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Scale the input channels of a (Cout, Cin[, k, k]) weight by ``r`` (Cin,)."""
    return w * r.view((1, -1) + (1,) * (w.dim() - 2))


def _pad_out_channels(t: torch.Tensor) -> torch.Tensor:
    """Zero-pad dim 0 (output channels) to a multiple of :data:`OUT_BLOCK`."""
    padded = t.new_zeros((-(-t.shape[0] // OUT_BLOCK) * OUT_BLOCK, *t.shape[1:]))
    padded[:t.shape[0]] = t
    return padded


def _row_split(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A (Cout, Cin, k, k) convolution as a 1xk one then a kx1 one with 0/1 weights.

    The first gives channel ``i * Cout + o`` = kernel row ``i`` of output ``o`` (padded to a
    multiple of :data:`OUT_BLOCK`); the second adds, for output ``o``, channel ``i * Cout + o``
    from ``i`` rows further down, which is where kernel row ``i`` reads.
    """
    cout, cin, k, _ = w.shape
    rows = _pad_out_channels(w.permute(2, 0, 1, 3).reshape(k * cout, cin, 1, k))
    select = torch.zeros((-(-cout // OUT_BLOCK) * OUT_BLOCK, rows.shape[0], k, 1))
    for i in range(k):
        for o in range(cout):
            select[o, i * cout + o, i, 0] = 1.0
    return rows.contiguous(memory_format=CL), select.contiguous(memory_format=CL)


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
        self.conv_in = _wkxk(enc[0].conv2d)  # its bias is irrelevant: an instance norm follows
        self.pad_in = enc[0].conv2d.kernel_size[0] // 2
        self.enc = [_block_weights(enc[3]), _block_weights(enc[4])]
        self.res = [_block_weights(m) for m in model[2:2 + net.n_blocks]]
        if conv3x3 not in CONV3X3_MODES:
            raise ValueError(f"unknown 3x3 mode {conv3x3!r}; known: {', '.join(CONV3X3_MODES)}")
        self.conv3x3 = conv3x3
        if conv3x3 == "winograd":
            for blk in self.res:
                blk.conv_b_winograd = winograd.transform_weight(blk.conv_b)
        self.up = [_block_weights(m) for m in model[2 + net.n_blocks:4 + net.n_blocks]]
        if head_mode not in HEAD_MODES:
            raise ValueError(f"unknown head mode {head_mode!r}; known: {', '.join(HEAD_MODES)}")
        self.head_mode = head_mode
        out_w, out_b = head.conv2d.weight.detach().float(), _bias(head.conv2d)
        self.out_channels = out_w.shape[0]
        self.conv_out = _pad_out_channels(out_w).contiguous(memory_format=CL)
        self.conv_out_bias = _pad_out_channels(out_b)
        self.conv_out_rows, self.conv_out_sum = _row_split(out_w)
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
        h = _relu_sub_(h, m)  # the true activation is r * h; r goes into the next weights
        h = self._down_bottleneck(h, self.enc[0], r, exact, None)
        return self._down_bottleneck(h, self.enc[1], None, exact, p)

    def _down_bottleneck(self, x: torch.Tensor, blk: _Block, r_in: torch.Tensor | None,
                         exact: bool, p: torch.Tensor | None) -> torch.Tensor:
        """Encoder bottleneck (stride 2, projected residual) on the true input ``r_in * x``."""
        res_w = blk.residual if r_in is None else _scale_in(blk.residual, r_in)
        if p is not None:
            res_w = p @ res_w
        residual = _conv1x1(x, res_w, stride=2)
        m, r = self._stats(x)  # instance norm ignores the pending per-channel scale r_in
        y = _conv1x1(_max_(x, m), _scale_in(blk.conv_a, r))  # a norm follows: see _max_padded
        m, r = self._stats(y)
        y = F.conv2d(_max_padded(y, m, 1), _scale_in(blk.conv_b, r), None, blk.stride)
        m, r = self._stats(y)
        w_c = _scale_in(blk.conv_c, r)
        if p is not None:
            w_c = p @ w_c
        out = _addmm_(residual, _relu_sub_(y, m), w_c)
        if exact:
            const = blk.bias_residual + blk.bias_c
            out.add_((const if p is None else p @ const).view(1, -1, 1, 1))
        return out

    def _bottleneck(self, x: torch.Tensor, blk: _Block, norms: Iterator[Affine | None]
                    ) -> torch.Tensor:
        """Identity-residual bottleneck; adds into the stream ``x`` in place."""
        m, r = self._stats(x, next(norms))
        z = torch.maximum(x, m.view(1, -1, 1, 1))  # a norm follows: see _max_padded
        y = _conv1x1(z, _scale_in(blk.conv_a, r))
        del z
        m, r = self._stats(y, next(norms))
        y = self._conv3x3(y, m, r, blk)
        m, r = self._stats(y, next(norms))
        return _addmm_(x, _relu_sub_(y, m), _scale_in(blk.conv_c, r))

    def _conv3x3(self, y: torch.Tensor, m: torch.Tensor, r: torch.Tensor, blk: _Block
                 ) -> torch.Tensor:
        """A residual block's 3x3 convolution of ``r * relu(y - m)``, reflection-padded."""
        if self.conv3x3 != "winograd" or blk.conv_b_winograd is None:
            return F.conv2d(_max_padded(y, m, 1), _scale_in(blk.conv_b, r))
        _, c, h, w = y.shape
        buf, corner = winograd.input_buffer(c, h, w, y)
        _max_padded(y, m, 1, out=corner)
        # scaling input channels commutes with the spatial transform: scale the rows of u
        return winograd.conv3x3(buf, blk.conv_b_winograd * r.view(1, -1, 1), h, w)

    def _up_bottleneck(self, x: torch.Tensor, blk: _Block, norms: Iterator[Affine | None]
                       ) -> torch.Tensor:
        """Upsampling bottleneck; its residual 1x1 runs before the upsampling."""
        n, _, h, w = x.shape
        low = _conv1x1(x, blk.residual)
        m, r = self._stats(x, next(norms))
        y = _conv1x1(_max_(x, m), _scale_in(blk.conv_a, r))  # a norm follows
        m, r = self._stats(y, next(norms))
        y = F.conv2d(_max_padded(y, m, 1, upsample=True), _scale_in(blk.conv_b, r))
        m, r = self._stats(y, next(norms))
        c = low.shape[1]
        out = _empty_cl(n, c, 2 * h, 2 * w, x)
        _nhwc(out).unflatten(2, (w, 2)).unflatten(1, (h, 2)).copy_(
            _nhwc(low).reshape(n, h, 1, w, 1, c).expand(n, h, 2, w, 2, c))
        return _addmm_(out, _relu_sub_(y, m), _scale_in(blk.conv_c, r))

    def _head_input(self, x: torch.Tensor, affine: Affine | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Last norm+ReLU as ``max(x, m)`` into the reflection-padded buffer, with ``m`` and
        the pending scale ``r``."""
        m, r = self._stats(x, affine)
        return _max_padded(x, m, self.pad_out), m, r

    def _head(self, padded: torch.Tensor, m: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """The 7x7 output convolution on ``r * (padded - m)``; its bias is the one that
        matters, and it absorbs the ``- m`` (the convolution of a per-channel constant)."""
        bias = self.conv_out_bias - self.conv_out.sum(dim=(2, 3)) @ (r * m)
        if self.head_mode == "direct":
            y = F.conv2d(padded, _scale_in(self.conv_out, r), bias)
        else:
            rows = F.conv2d(padded, _scale_in(self.conv_out_rows, r))
            del padded
            y = F.conv2d(rows, self.conv_out_sum, bias)
        return y[:, :self.out_channels].contiguous()

"""The fast path's building blocks: in-place tensor operations on channels_last buffers, and
the weights of the eager model copied into the layouts they need (see :mod:`msgnet.inference.fast`
for why each rewrite is exact)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from msgnet.model.net import Bottleneck, UpBottleneck

CL = torch.channels_last
OUT_BLOCK = 8  # oneDNN AVX2 convolution kernels block output channels by 8


# ---------------------------------------------------------------------------- tensor helpers
def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def addmm_(acc: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``acc += conv1x1(x, w)`` inside the GEMM; both channels_last, ``w`` is (Cout, Cin)."""
    n, c, h, wd = x.shape
    nhwc(acc).view(n * h * wd, acc.shape[1]).addmm_(nhwc(x).reshape(n * h * wd, c), w.t())
    return acc


def conv1x1(x: torch.Tensor, w: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """1x1 convolution with a (Cout, Cin) weight (oneDNN beats a GEMM on tall-skinny shapes)."""
    return F.conv2d(x, w.view(*w.shape, 1, 1), None, stride)


def empty_cl(n: int, c: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    return torch.empty((n, c, h, w), dtype=like.dtype, device=like.device, memory_format=CL)


def relu_sub_(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x = relu(x - m)`` in place, ``m`` per channel (C,)."""
    return x.sub_(m.view(1, -1, 1, 1)).relu_()


def reflect_borders_(buf: torch.Tensor, pad: int) -> None:
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


def max_(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x = max(x, m) = relu(x - m) + m`` in place, ``m`` per channel (C,); see
    :func:`max_padded` for why the ``+ m`` may stay."""
    return x.clamp_min_(m.view(1, -1, 1, 1))


def max_padded(x: torch.Tensor, m: torch.Tensor, pad: int, upsample: bool = False,
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
    buf = empty_cl(n, c, oh + 2 * pad, ow + 2 * pad, x) if out is None else out
    inner = buf[:, :, pad:pad + oh, pad:pad + ow]
    if upsample:
        src = nhwc(x).reshape(n, h, 1, w, 1, c).expand(n, h, 2, w, 2, c)
        torch.maximum(src, m, out=nhwc(inner).unflatten(2, (w, 2)).unflatten(1, (h, 2)))
    else:
        torch.maximum(x, m.view(1, c, 1, 1), out=inner)
    reflect_borders_(buf, pad)
    return buf


# ---------------------------------------------------------------------------- weights
@dataclass
class Block:
    """One (Up)Bottleneck's weights: 1x1 as (Cout, Cin), 3x3 channels_last."""

    conv_a: torch.Tensor           # 1x1 after the block's first norm
    conv_b: torch.Tensor           # 3x3 (stride 2 in the encoder; after an upsample in Up)
    conv_c: torch.Tensor           # 1x1 expansion into the residual stream
    bias_c: torch.Tensor
    residual: torch.Tensor | None  # 1x1 projection of the residual (None: identity)
    bias_residual: torch.Tensor | None
    stride: int
    conv_b_winograd: torch.Tensor | None = None  # conv_b as (36, Cin, Cout), residual blocks


def w1x1(conv: torch.nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().float().reshape(conv.out_channels, conv.in_channels).clone()


def wkxk(conv: torch.nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().float().contiguous(memory_format=CL).clone()


def bias(conv: torch.nn.Conv2d) -> torch.Tensor:
    return conv.bias.detach().float().clone()


def block_weights(block: Bottleneck | UpBottleneck) -> Block:
    seq = block.conv_block
    conv_b = seq[5].conv2d
    if isinstance(block, UpBottleneck):
        residual: torch.nn.Conv2d | None = block.residual_layer.conv2d
    else:
        residual = block.residual_layer if block.downsample is not None else None
    return Block(conv_a=w1x1(seq[2]), conv_b=wkxk(conv_b), conv_c=w1x1(seq[8]),
                  bias_c=bias(seq[8]),
                  residual=w1x1(residual) if residual is not None else None,
                  bias_residual=bias(residual) if residual is not None else None,
                  stride=conv_b.stride[0])


def scale_in(w: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Scale the input channels of a (Cout, Cin[, k, k]) weight by ``r`` (Cin,)."""
    return w * r.view((1, -1) + (1,) * (w.dim() - 2))


def pad_out_channels(t: torch.Tensor) -> torch.Tensor:
    """Zero-pad dim 0 (output channels) to a multiple of :data:`OUT_BLOCK`."""
    padded = t.new_zeros((-(-t.shape[0] // OUT_BLOCK) * OUT_BLOCK, *t.shape[1:]))
    padded[:t.shape[0]] = t
    return padded


def row_split(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A (Cout, Cin, k, k) convolution as a 1xk one then a kx1 one with 0/1 weights.

    The first gives channel ``i * Cout + o`` = kernel row ``i`` of output ``o`` (padded to a
    multiple of :data:`OUT_BLOCK`); the second adds, for output ``o``, channel ``i * Cout + o``
    from ``i`` rows further down, which is where kernel row ``i`` reads.
    """
    cout, cin, k, _ = w.shape
    rows = pad_out_channels(w.permute(2, 0, 1, 3).reshape(k * cout, cin, 1, k))
    select = torch.zeros((-(-cout // OUT_BLOCK) * OUT_BLOCK, rows.shape[0], k, 1))
    for i in range(k):
        for o in range(cout):
            select[o, i * cout + o, i, 0] = 1.0
    return rows.contiguous(memory_format=CL), select.contiguous(memory_format=CL)

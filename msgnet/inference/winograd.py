"""3x3 convolution by Winograd's minimal filtering F(4x4, 3x3), in channels_last, from torch ops.

Why: the six residual blocks' 3x3 convolutions (128 -> 128 channels at a quarter of the
resolution) are the largest single cost of the forward pass, and oneDNN's AVX2 kernels run
them directly (9 multiply-adds per tap and pixel). F(4x4, 3x3) computes each 4x4 output tile
from a 6x6 input tile with 36 element-wise products instead of 144, so the GEMM work drops to
a quarter; the transforms are small fixed matrices applied by batched GEMMs over strided
views. On 2 AVX2 cores at 128 channels, one such convolution takes 0.76 to 0.89x the time of
oneDNN's direct kernel and the whole forward pass is 4 to 9% faster
(``docs/performance.md`` has the measurements).

The arithmetic is exact in real numbers (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016); in fp32 the relative error is ~1e-5, far below what a picture shows.

Layout: the input is a row-major NHWC buffer made by :func:`input_buffer`: the (already
padded) image sits in its top-left corner and the margins right and below are zero, so every
6x6 tile, including a spare one at the end of each row that keeps the stride between tiles
uniform, reads finite values.
"""

from __future__ import annotations

import torch

# Lavin & Gray's F(4x4, 3x3) matrices: Y = A^T [(G g G^T) * (B^T d B)] A
_BT = torch.tensor([[4, 0, -5, 0, 1, 0],
                    [0, -4, -4, 1, 1, 0],
                    [0, 4, -4, -1, 1, 0],
                    [0, -2, -1, 2, 1, 0],
                    [0, 2, -1, -2, 1, 0],
                    [0, 4, 0, -5, 0, 1]], dtype=torch.float32)
_G = torch.tensor([[1 / 4, 0, 0],
                   [-1 / 6, -1 / 6, -1 / 6],
                   [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6],
                   [1 / 24, -1 / 12, 1 / 6],
                   [0, 0, 1]], dtype=torch.float64)
_AT = torch.tensor([[1, 1, 1, 1, 1, 0],
                    [0, 1, -1, 2, -2, 0],
                    [0, 1, 1, 4, 4, 0],
                    [0, 1, -1, 8, -8, 1]], dtype=torch.float32)
TILE = 4  # output tile side
WINDOW = 6  # input tile side (TILE + 3 - 1)
BAND_TILES = 512  # tiles per band: 9 MB of transformed tiles at 128 channels


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """(K, C, 3, 3) weight -> (36, C, K): ``G g G^T`` per (row, column) frequency, in float64
    then rounded once, as the GEMM's right-hand side."""
    if weight.shape[2:] != (3, 3):
        raise ValueError(f"F(4x4, 3x3) needs a 3x3 kernel, got {tuple(weight.shape[2:])}")
    k, c = weight.shape[:2]
    u = torch.einsum("ai,kcij,bj->abck", _G, weight.detach().double(), _G)
    return u.reshape(WINDOW * WINDOW, c, k).float().contiguous()


def tiles(h: int, w: int) -> tuple[int, int]:
    """Output tiles down and across for an (h, w) output."""
    return -(-h // TILE), -(-w // TILE)


def input_buffer(c: int, h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-margined buffer for an (h, w) output and the (1, C, h+2, w+2) channels_last view
    of its top-left corner, where the caller writes the padded input.

    Rows: ``4 * tiles_down + 2``; columns: ``4 * (tiles_across + 1)``, one spare tile per row.
    Only the margins are zeroed (the caller fills the corner).
    """
    ty, tx = tiles(h, w)
    rows, cols = TILE * ty + 2, TILE * (tx + 1)
    buf = torch.empty((rows, cols, c), dtype=like.dtype, device=like.device)
    buf[h + 2:].zero_()
    buf[:h + 2, w + 2:].zero_()
    corner = buf[:h + 2, :w + 2].unsqueeze(0).permute(0, 3, 1, 2)
    return buf, corner


def conv3x3(buf: torch.Tensor, u: torch.Tensor, h: int, w: int,
            band_tiles: int = BAND_TILES) -> torch.Tensor:
    """Valid 3x3 convolution of the padded input in ``buf`` (from :func:`input_buffer`) with
    a transformed weight ``u`` (36, C, K); returns (1, K, h, w) channels_last.

    Runs in bands of whole tile rows, about ``band_tiles`` tiles each, so the transformed
    tiles (2.25x the input) stay cache-sized and the temporaries do not grow with the image.
    """
    rows, cols, c = buf.shape
    k = u.shape[2]
    ty, tx = tiles(h, w)
    if (rows, cols) != (TILE * ty + 2, TILE * (tx + 1)) or u.shape[1] != c:
        raise ValueError("buffer does not match the output size or the weight")
    out = torch.empty((1, k, h, w), dtype=buf.dtype, device=buf.device,
                      memory_format=torch.channels_last)
    out_hwk = out.permute(0, 2, 3, 1)[0]
    band = max(1, band_tiles // tx)
    for first in range(0, ty, band):
        n_rows = min(band, ty - first)
        y = _band(buf[TILE * first:TILE * (first + n_rows) + 2], u, n_rows, tx)
        top = TILE * first
        out_hwk[top:min(h, top + TILE * n_rows)].copy_(y[:min(h, top + TILE * n_rows) - top, :w])
    return out


def _band(buf: torch.Tensor, u: torch.Tensor, ty: int, tx: int) -> torch.Tensor:
    """``ty`` tile rows of ``buf`` (rows ``4 * ty + 2``) -> (4 ty, 4 tx, K), not cropped."""
    _, cols, c = buf.shape
    k = u.shape[2]
    across = tx + 1  # tiles per buffer row, the spare one included
    bt, at = _BT.to(buf.dtype), _AT.to(buf.dtype)
    row_len = cols * c
    # rows of each tile: (ty, 6 window rows, cols*C) -> B^T over the window rows
    windows = buf.as_strided((ty, WINDOW, row_len), (TILE * row_len, row_len, 1),
                             buf.storage_offset())
    n = ty * WINDOW * row_len
    rows_t = torch.empty(n + 2 * c, dtype=buf.dtype, device=buf.device)  # slack: spare tile
    torch.matmul(bt, windows, out=rows_t[:n].view(ty, WINDOW, row_len))
    # columns of each tile: (ty*6*across tiles, 6 window columns, C) -> B^T again
    col_windows = rows_t.as_strided((ty * WINDOW * across, WINDOW, c), (TILE * c, c, 1))
    v = torch.matmul(bt, col_windows).view(ty, WINDOW, across, WINDOW, c)
    del windows, rows_t, col_windows
    v = v[:, :, :tx].permute(1, 3, 0, 2, 4).reshape(WINDOW * WINDOW, ty * tx, c)
    m = torch.bmm(v, u)  # (36, tiles, K): the element-wise products, as 36 GEMMs
    del v
    # A^T over the row frequencies, then over the column frequencies
    y = torch.matmul(at, m.view(WINDOW, WINDOW * ty * tx * k)).view(TILE, WINDOW, -1)
    del m
    y = torch.matmul(at, y).view(TILE, TILE, ty, tx, k)  # (row i, col j, ty, tx, K)
    return y.permute(2, 0, 3, 1, 4).reshape(TILE * ty, TILE * tx, k)

"""Image tensors sent by programmatic clients: ``.npy`` (no pickle) or safetensors.

Both formats describe plain numeric arrays and cannot execute code. They are still untrusted:
the ``.npy`` header is parsed and checked against the payload size and the pixel cap *before*
any array is allocated (``numpy.load`` would allocate whatever shape the header claims), and
object arrays are refused outright; safetensors files go through ``safetensors.numpy``.

Accepted layouts (RGB channel order):

* ``uint8``  ``H x W x 3`` (or ``1 x H x W x 3``), values 0..255;
* ``float16/32/64`` ``3 x H x W`` or ``1 x 3 x H x W``; values in 0..1 when the maximum is
  at most 1.0, otherwise 0..255 (clipped).
"""

from __future__ import annotations

import io
import struct

import numpy as np
import safetensors.numpy
from PIL import Image
from safetensors import SafetensorError

from handler.errors import RequestError, corrupt_image, not_an_image, short, too_large

NPY_MAGIC = b"\x93NUMPY"
SAFETENSORS_KEY = "image"
FLOAT_KINDS = ("f2", "f4", "f8")
LAYOUT_HELP = ("expected uint8 HxWx3 RGB, or float 3xHxW / 1x3xHxW RGB in 0..1 or 0..255")


def looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (header_len,) = struct.unpack("<Q", data[:8])
    return 2 <= header_len <= len(data) - 8 and data[8:9] == b"{"


def decode_tensor(data: bytes, *, max_pixels: int) -> Image.Image:
    """Turn ``.npy`` or safetensors bytes into an RGB PIL image (raises RequestError)."""
    try:
        if data.startswith(NPY_MAGIC):
            array = _load_npy(data, max_pixels)
        elif looks_like_safetensors(data):
            array = _load_safetensors(data, max_pixels)
        else:
            raise not_an_image("tensor field is neither a .npy file nor safetensors")
        return array_to_image(array)
    except RequestError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, struct.error) as exc:
        # a crafted header that slipped past the checks below is still the client's 400
        raise corrupt_image(f"unreadable tensor: {short(str(exc), 120)}") from exc


def _hw_of(shape: tuple[int, ...], kind: str) -> tuple[int, int]:
    """Height and width for an accepted layout, else a not_an_image error."""
    if kind == "u1":
        if len(shape) == 4 and shape[0] == 1:
            shape = shape[1:]
        if len(shape) == 3 and shape[2] == 3:
            return shape[0], shape[1]
    elif kind in FLOAT_KINDS:
        if len(shape) == 4 and shape[0] == 1:
            shape = shape[1:]
        if len(shape) == 3 and shape[0] == 3:
            return shape[1], shape[2]
    else:
        raise not_an_image(f"unsupported tensor dtype {kind!r}; {LAYOUT_HELP}")
    raise not_an_image(f"unsupported tensor shape {tuple(shape)} for dtype {kind}; {LAYOUT_HELP}")


def _check_pixels(h: int, w: int, max_pixels: int) -> None:
    if h < 1 or w < 1:
        raise not_an_image(f"tensor has an empty side ({h}x{w})")
    if h * w > max_pixels:
        raise too_large(f"tensor is {w}x{h} = {h * w} pixels; the limit is {max_pixels}")


def _dtype_kind(dtype: np.dtype) -> str:
    return f"{dtype.kind}{dtype.itemsize}" if dtype.kind in "uf" else dtype.str


def _load_npy(data: bytes, max_pixels: int) -> np.ndarray:
    fp = io.BytesIO(data)
    try:
        major, _minor = np.lib.format.read_magic(fp)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unknown .npy version {major}")
    except Exception as exc:  # numpy raises ValueError, SyntaxError, TokenError ...
        message = str(exc)
        if "allow_pickle" in message or "object" in message.lower():
            raise not_an_image("object (pickled) arrays are refused") from exc
        raise corrupt_image(f"broken .npy header: {short(message, 120)}") from exc
    if dtype.hasobject:
        raise not_an_image("object (pickled) arrays are refused")
    # numpy accepts any int subclass in the shape: (True, 4, 3) would reach reshape
    if not isinstance(shape, tuple) or any(type(n) is not int or n < 0 for n in shape):
        raise corrupt_image("broken .npy header: the shape must be non-negative integers")
    h, w = _hw_of(tuple(shape), _dtype_kind(dtype))
    _check_pixels(h, w, max_pixels)
    count = int(np.prod(shape))
    payload = memoryview(data)[fp.tell():]
    if len(payload) != count * dtype.itemsize:
        raise corrupt_image(f".npy payload has {len(payload)} bytes, its header promises "
                            f"{count * dtype.itemsize} (truncated file?)")
    array = np.frombuffer(payload, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def _load_safetensors(data: bytes, max_pixels: int) -> np.ndarray:
    """The ``image`` tensor (or the only one), parsed by safetensors itself, which checks the
    header against the bytes; no array can outgrow the (capped) payload, so the pixel cap
    follows the parse."""
    try:
        tensors = safetensors.numpy.load(data)
    except KeyError as exc:  # a dtype numpy has no type for (BF16, F8 ...)
        raise not_an_image(f"unsupported safetensors dtype {exc}; {LAYOUT_HELP}") from exc
    except (SafetensorError, ValueError, TypeError) as exc:
        raise corrupt_image(f"broken safetensors file: {short(str(exc), 120)}") from exc
    if SAFETENSORS_KEY in tensors:
        array = tensors[SAFETENSORS_KEY]
    elif len(tensors) == 1:
        array = next(iter(tensors.values()))
    else:
        raise not_an_image(f"safetensors file must hold a tensor named {SAFETENSORS_KEY!r}")
    h, w = _hw_of(tuple(array.shape), _dtype_kind(array.dtype))
    _check_pixels(h, w, max_pixels)
    return array


def array_to_image(array: np.ndarray) -> Image.Image:
    """An accepted-layout array (see module doc) as an RGB PIL image."""
    kind = _dtype_kind(array.dtype)
    _hw_of(tuple(array.shape), kind)
    if kind == "u1":
        hwc = array.reshape(array.shape[-3:])
    else:
        chw = array.reshape(array.shape[-3:]).astype(np.float32)
        if not np.isfinite(chw).all():
            raise not_an_image("tensor contains NaN or infinite values")
        scale = 255.0 if chw.size and float(chw.max()) <= 1.0 else 1.0
        hwc = np.clip(chw.transpose(1, 2, 0) * scale + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(hwc))


__all__ = ["RequestError", "array_to_image", "decode_tensor", "looks_like_safetensors"]

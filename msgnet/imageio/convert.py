"""Conversions: any decoded Pillow mode to 8-bit RGB, and images to and from the model's
tensors, (1, 3, H, W) float32, BGR channel order, 0..255."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from msgnet.imageio.errors import SEND_HINT, NotAnImageError

try:  # Pillow built without LittleCMS: CMYK falls back to the plain formula
    from PIL import ImageCms
except ImportError:  # pragma: no cover
    ImageCms = None  # type: ignore[assignment]

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any decoded Pillow mode to 8-bit RGB: alpha on white, 16-bit scaled, CMYK converted."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit samples (PNG/TIFF): full range 0..65535 maps to 0..255, not clipped at 255
        arr = np.asarray(img).astype(np.float32)
        arr8 = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        arr = np.nan_to_num(arr)
        if arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8)).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        return background.convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(img)
    try:
        return img.convert("RGB")
    except Exception as exc:
        raise NotAnImageError(f"Images with pixel mode {mode} are not supported. "
                              f"{SEND_HINT}") from exc


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    """Through the embedded ICC profile when there is one (print files), else Pillow's formula."""
    icc = img.info.get("icc_profile")
    if icc and ImageCms is not None:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"),
                                            outputMode="RGB")
            if out is not None:
                return out
        except Exception:  # a broken profile: fall back to the plain conversion
            pass
    return img.convert("RGB")


def image_to_bgr(img: Image.Image) -> torch.Tensor:
    """PIL image -> (1, 3, H, W) float32 BGR 0..255, the model's input convention."""
    if img.mode != "RGB":
        img = to_rgb(img)
    arr = np.asarray(img, dtype=np.uint8)[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).float()


def bgr_to_image(t: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) BGR 0..255 -> PIL RGB (clamped and rounded)."""
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) BGR tensor, got {tuple(t.shape)}")
    t = torch.nan_to_num(t.detach().to("cpu", torch.float32)).clamp(0, 255).round()
    arr = t.to(torch.uint8).flip(0).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr)

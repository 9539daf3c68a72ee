"""Image decoding that survives real files, and the tensor conversions the model needs.

Uploads come from phones, scanners and chat apps: EXIF-rotated JPEGs, CMYK JPEGs, PNGs with
alpha or 16-bit samples, palette GIFs with transparency, animated GIF/WebP, and sometimes not an
image at all (a PDF, a HEIC photo, a truncated upload). :func:`decode_image` turns every one of
them into an 8-bit RGB :class:`PIL.Image.Image` or raises an :class:`ImageError` whose ``code``
and ``http_status`` a server can answer with and whose message a person can act on.

Limits are checked before pixels are decoded: the byte size first, then the size the header
claims (a 200-byte PNG can claim 20000x20000 pixels), so a decompression bomb costs nothing.
Only the formats listed in :data:`ALLOWED_FORMATS` are parsed at all (less parser surface).
AVIF is read by Pillow itself (11.3+ wheels); HEIC/HEIF, what iPhones save, by the
``pillow-heif`` plugin (the ``model`` extra), registered here on first use; without it a HEIC
upload gets a clear "not supported here" error with the iPhone setting that avoids HEIC.

Tensors follow the model's convention: (1, 3, H, W) float32, BGR channel order, 0..255.
"""

from __future__ import annotations

import functools
import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # Pillow built without LittleCMS: CMYK falls back to the plain formula
    from PIL import ImageCms
except ImportError:  # pragma: no cover
    ImageCms = None  # type: ignore[assignment]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}  # what list_images finds
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 64_000_000
# Pillow format names; MPO is what Pillow calls the multi-picture JPEGs many cameras write
# (AVIF: Pillow's own plugin; HEIF: pillow-heif's name for HEIC/HEIF photos)
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "AVIF", "HEIF")
# ISO-BMFF ``ftyp`` brands of still images (as in msgnet/animation/decode.py)
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"heif")
AVIF_BRANDS = (b"avif", b"avis")
IPHONE_HINT = "(On an iPhone: Settings > Camera > Formats > Most Compatible.)"
SEND_HINT = "Send a JPEG, PNG or WebP photo."
JPEG_TYPE, PNG_TYPE = "image/jpeg", "image/png"
# zlib level 3 encodes a 2048 px PNG several times faster than Pillow's default 6 for a few
# percent more bytes; the response is sent once, so speed wins
PNG_COMPRESS_LEVEL = 3
EXIF_ORIENTATION = 0x0112  # the tag ImageOps.exif_transpose reads (clients and tests write it)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageError(ValueError):
    """An upload that cannot be used as an image; ``code``/``http_status`` for API answers."""

    code: str = "bad_image"
    http_status: int = 400


class NotAnImageError(ImageError):
    """The bytes are not an image in a supported format (a PDF, text, HEIC, ...)."""

    code = "not_an_image"
    http_status = 400


class CorruptImageError(ImageError):
    """A file of a known image format that cannot be decoded (truncated or broken)."""

    code = "corrupt_image"
    http_status = 400


class ImageTooLargeError(ImageError):
    """Over the byte cap or the pixel cap (decompression-bomb guard)."""

    code = "too_large"
    http_status = 413


# ---------------------------------------------------------------------------- sniffing
def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n} pixels"


def sniff_image_format(data: bytes) -> str | None:
    """Name of the supported image format the magic bytes announce, else None.

    Used to tell a damaged image (its header is right, the rest is not) from a non-image.
    """
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    # "BM" alone would match text starting with "BM": check the DIB header size too
    if head.startswith(b"BM") and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
            12, 16, 40, 52, 56, 64, 108, 124):
        return "BMP"
    # HEIC and AVIF only when this installation can read them: otherwise such a file is "not
    # supported here" (with a hint), never "damaged"
    brand = head[8:12] if head[4:8] == b"ftyp" else b""
    if brand in AVIF_BRANDS and "AVIF" in _registered_formats():
        return "AVIF"
    if brand in HEIF_BRANDS and "HEIF" in _registered_formats():
        return "HEIC"
    return None


def describe_non_image(data: bytes) -> str:
    """A short human name for what the bytes look like (for error messages)."""
    head = bytes(data[:64])
    brand = head[8:12] if head[4:8] == b"ftyp" else b""
    if head.startswith(b"%PDF"):
        return "PDF document"
    if brand in HEIF_BRANDS:
        return "HEIC/HEIF photo"
    if brand in AVIF_BRANDS:
        return "AVIF image"
    if brand:
        return "video"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP archive or Office document"
    if head.startswith(b"8BPS"):
        return "Photoshop document"
    if head.startswith(b"\x1aE\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "video"
    if head.startswith((b"ID3", b"OggS", b"fLaC")) or (head[:4] == b"RIFF"
                                                       and head[8:12] == b"WAVE"):
        return "audio file"
    text = head.lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in bytes(data[:1024])):
        return "SVG drawing"
    if text.startswith((b"<!doctype html", b"<html")):
        return "web page"
    try:
        sample = bytes(data[:512]).decode("utf-8")
    except UnicodeDecodeError:
        return "unknown format"
    if all(ch.isprintable() or ch in "\r\n\t" for ch in sample):
        return "text"
    return "unknown format"


def _not_an_image(data: bytes) -> NotAnImageError:
    kind = describe_non_image(data)
    if kind == "HEIC/HEIF photo":
        # only reached when pillow-heif is missing (or could not parse the file)
        return NotAnImageError("HEIC/HEIF photos are not supported by this server (it lacks "
                               f"pillow-heif). {SEND_HINT} {IPHONE_HINT}")
    if kind == "AVIF image":  # only reached with a Pillow built without AVIF
        return NotAnImageError(f"AVIF images are not supported by this server. {SEND_HINT}")
    if kind == "unknown format":
        other = _pillow_format(data)
        if other:
            return NotAnImageError(f"{other} images are not supported. {SEND_HINT}")
        return NotAnImageError(f"The file is not an image this service can read. {SEND_HINT}")
    return NotAnImageError(f"The file is not an image ({kind}). {SEND_HINT}")


def _pillow_format(data: bytes) -> str | None:
    """Format name if Pillow knows it but it is not allowed here (PSD, ICO, ...); header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return img.format
    except Exception:  # anything unreadable is simply "not an image"
        return None


def _corrupt(fmt: str | None, exc: BaseException | None = None) -> CorruptImageError:
    detail = str(exc).strip().splitlines()[0][:120] if exc is not None and str(exc) else ""
    name = f"The {fmt} file" if fmt else "The image file"
    err = CorruptImageError(f"{name} is damaged or incomplete"
                            + (f" ({detail})" if detail else "")
                            + ". Send the complete file again.")
    err.detail = detail  # type: ignore[attr-defined]
    return err


def _pillow_bomb(exc: BaseException, max_pixels: int) -> ImageTooLargeError:
    """Pillow's own guard fired (its limit is below ours): same message, its numbers."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    size = _pixels(int(found.group(1))) if found else "too many pixels"
    return ImageTooLargeError(f"The image has {size}; the limit is {_pixels(limit)}. "
                              "Send a smaller picture.")


def _too_many_pixels(w: int, h: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"The image is {w}x{h} pixels ({_pixels(w * h)}); the limit is "
                              f"{_pixels(max_pixels)}. Send a smaller picture.")


# ---------------------------------------------------------------------------- decoding
def decode_image(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 draft_longest: int | None = None) -> Image.Image:
    """Decode uploaded bytes into an upright 8-bit RGB image (first frame if animated).

    ``draft_longest`` lets a JPEG decode at a reduced scale (1/2, 1/4, 1/8) when the caller
    only needs that longest side: a 24 MP photo bound for 512 px then decodes in a fraction of
    the time. The result is never smaller than requested.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode_image expects bytes, got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise NotAnImageError(f"The file is empty. {SEND_HINT}")
    if size > max_bytes:
        raise ImageTooLargeError(f"The file is {_mb(size)}; the limit is {_mb(max_bytes)}. "
                                 "Send a smaller picture.")
    sniffed = sniff_image_format(data)
    with warnings.catch_warnings():
        # Pillow's own bomb guard only warns below twice its limit: make it an error; its
        # other warnings (corrupt EXIF, odd metadata) are noise for an upload that decodes
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(data, sniffed, max_pixels)
        fmt = img.format or sniffed
        w, h = img.size
        if w < 1 or h < 1:
            raise _corrupt(fmt, ValueError(f"the header says {w}x{h} pixels"))
        if w * h > max_pixels:
            raise _too_many_pixels(w, h, max_pixels)
        if draft_longest and img.format in ("JPEG", "MPO"):
            img.draft(None, fit_longest(w, h, draft_longest))
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _pillow_bomb(exc, max_pixels) from exc
        except MemoryError as exc:
            raise ImageTooLargeError("The image is too large to decode. "
                                     "Send a smaller picture.") from exc
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error...
            raise _corrupt(fmt, exc) from exc
    _make_upright(img)
    try:
        return to_rgb(img)
    except ImageError:
        raise
    except Exception as exc:
        raise _corrupt(fmt, exc) from exc


@functools.cache
def _registered_formats() -> tuple[str, ...]:
    """The allowed formats this Pillow build can open (registering all plugins once, and
    pillow-heif's HEIF opener when it is installed)."""
    Image.init()
    register_heif()
    return tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)


def register_heif() -> bool:
    """Register pillow-heif's opener for HEIC/HEIF (iPhone photos); False when the package
    is missing. Only its HEIF opener: Pillow reads AVIF itself."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def readable_formats() -> tuple[str, ...]:
    """The formats :func:`decode_image` reads here (AVIF and HEIF depend on the install)."""
    return _registered_formats()


def _open(data: bytes, sniffed: str | None, max_pixels: int) -> Image.Image:
    """Parse the header only (no pixels): format, size, mode."""
    try:
        return Image.open(io.BytesIO(data), formats=_registered_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _pillow_bomb(exc, max_pixels) from exc
    except UnidentifiedImageError as exc:
        if sniffed:
            raise _corrupt(sniffed, None) from exc
        raise _not_an_image(data) from exc
    except Exception as exc:  # a known header that breaks the parser
        if sniffed:
            raise _corrupt(sniffed, exc) from exc
        raise _not_an_image(data) from exc


def _make_upright(img: Image.Image) -> None:
    """Turn ``img`` in place as its EXIF orientation says (phones store photos sideways); a
    broken EXIF block means "as stored", not an error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF: we do not care
            ImageOps.exif_transpose(img, in_place=True)
    except Exception:
        pass


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


def load_image(path: str | Path, **kw) -> Image.Image:
    """Read a file and :func:`decode_image` it (the byte cap is checked before reading)."""
    path = Path(path)
    max_bytes = kw.get("max_bytes", DEFAULT_MAX_BYTES)
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageTooLargeError(f"{path.name} is {_mb(size)}; the limit is {_mb(max_bytes)}. "
                                 "Use a smaller picture.")
    return decode_image(path.read_bytes(), **kw)


# ---------------------------------------------------------------------------- geometry
def list_images(folder: str | Path, exclude_prefix: list[str] | tuple = ()) -> list[Path]:
    """The image files under ``folder`` (recursive, by suffix), sorted, less those whose name
    starts with one of ``exclude_prefix`` (a held-out set)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [p for p in files if not any(p.name.startswith(x) for x in exclude_prefix)]


def fit_longest(width: int, height: int, longest: int) -> tuple[int, int]:
    """Size with the longest side ``longest`` and the same aspect ratio (each side >= 1)."""
    if width < 1 or height < 1 or longest < 1:
        raise ValueError(f"sizes must be positive, got {width}x{height} -> {longest}")
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_longest(img: Image.Image, longest: int) -> Image.Image:
    """Resize (up or down, LANCZOS) so the longest side is ``longest``; no-op if it is."""
    size = fit_longest(img.width, img.height, longest)
    if size == img.size:
        return img
    # reducing_gap: a cheap integer reduce first on big downscales, visually identical
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# ---------------------------------------------------------------------------- tensors
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


def encode_image(img: Image.Image, fmt: str = "jpeg", quality: int = 92) -> tuple[bytes, str]:
    """Encode to JPEG or PNG; returns the bytes and their Content-Type."""
    fmt = fmt.lower()
    if fmt not in ("jpeg", "jpg", "png"):
        raise ValueError(f"unsupported output format {fmt!r}: use jpeg or png")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    if img.mode != "RGB":
        img = to_rgb(img)
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buf.getvalue(), PNG_TYPE
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), JPEG_TYPE

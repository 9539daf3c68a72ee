"""Decoding uploads and files into upright 8-bit RGB images, limits checked first.

Limits are checked before pixels are decoded: the byte size first, then the size the header
claims (a 200-byte PNG can claim 20000x20000 pixels), so a decompression bomb costs nothing.
Only the formats listed in :data:`ALLOWED_FORMATS` are parsed at all (less parser surface).
AVIF is read by Pillow itself (11.3+ wheels); HEIC/HEIF, what iPhones save, by the
``pillow-heif`` plugin (the ``model`` extra), registered here on first use; without it a HEIC
upload gets a clear "not supported here" error with the iPhone setting that avoids HEIC.
"""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from msgnet.imageio.convert import to_rgb
from msgnet.imageio.errors import (
    AVIF_BRANDS,
    HEIF_BRANDS,
    SEND_HINT,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    corrupt,
    megabytes,
    not_an_image,
    pillow_bomb,
    too_many_pixels,
)
from msgnet.imageio.resize import fit_longest

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}  # what list_images finds
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 64_000_000
# Pillow format names; MPO is what Pillow calls the multi-picture JPEGs many cameras write
# (AVIF: Pillow's own plugin; HEIF: pillow-heif's name for HEIC/HEIF photos)
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "AVIF", "HEIF")
EXIF_ORIENTATION = 0x0112  # the tag ImageOps.exif_transpose reads (clients and tests write it)


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
        raise ImageTooLargeError(f"The file is {megabytes(size)}; the limit is "
                                 f"{megabytes(max_bytes)}. Send a smaller picture.")
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
            raise corrupt(fmt, ValueError(f"the header says {w}x{h} pixels"))
        if w * h > max_pixels:
            raise too_many_pixels(w, h, max_pixels)
        if draft_longest and img.format in ("JPEG", "MPO"):
            img.draft(None, fit_longest(w, h, draft_longest))
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise pillow_bomb(exc, max_pixels) from exc
        except MemoryError as exc:
            raise ImageTooLargeError("The image is too large to decode. "
                                     "Send a smaller picture.") from exc
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error...
            raise corrupt(fmt, exc) from exc
    _make_upright(img)
    try:
        return to_rgb(img)
    except ImageError:
        raise
    except Exception as exc:
        raise corrupt(fmt, exc) from exc


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
        raise pillow_bomb(exc, max_pixels) from exc
    except UnidentifiedImageError as exc:
        if sniffed:
            raise corrupt(sniffed, None) from exc
        raise not_an_image(data) from exc
    except Exception as exc:  # a known header that breaks the parser
        if sniffed:
            raise corrupt(sniffed, exc) from exc
        raise not_an_image(data) from exc


def _make_upright(img: Image.Image) -> None:
    """Turn ``img`` in place as its EXIF orientation says (phones store photos sideways); a
    broken EXIF block means "as stored", not an error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF: we do not care
            ImageOps.exif_transpose(img, in_place=True)
    except Exception:
        pass


def load_image(path: str | Path, **kw) -> Image.Image:
    """Read a file and :func:`decode_image` it (the byte cap is checked before reading)."""
    path = Path(path)
    max_bytes = kw.get("max_bytes", DEFAULT_MAX_BYTES)
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageTooLargeError(f"{path.name} is {megabytes(size)}; the limit is "
                                 f"{megabytes(max_bytes)}. Use a smaller picture.")
    return decode_image(path.read_bytes(), **kw)


def list_images(folder: str | Path, exclude_prefix: list[str] | tuple = ()) -> list[Path]:
    """The image files under ``folder`` (recursive, by suffix), sorted, less those whose name
    starts with one of ``exclude_prefix`` (a held-out set)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [p for p in files if not any(p.name.startswith(x) for x in exclude_prefix)]

"""The errors an image upload can raise, with a message a person can act on.

Every :class:`ImageError` carries the ``code`` and ``http_status`` a server answers with; the
helpers here build the messages (what a non-image looks like, the limits in plain units).
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image

# ISO-BMFF ``ftyp`` brands of still images (as in msgnet/animation/decode.py)
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"heif")
AVIF_BRANDS = (b"avif", b"avis")
IPHONE_HINT = "(On an iPhone: Settings > Camera > Formats > Most Compatible.)"
SEND_HINT = "Send a JPEG, PNG or WebP photo."


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


def megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def pixel_count(n: int) -> str:
    return f"{n / 1e6:.1f} megapixels" if n >= 100_000 else f"{n} pixels"


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


def not_an_image(data: bytes) -> NotAnImageError:
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


def corrupt(fmt: str | None, exc: BaseException | None = None) -> CorruptImageError:
    detail = str(exc).strip().splitlines()[0][:120] if exc is not None and str(exc) else ""
    name = f"The {fmt} file" if fmt else "The image file"
    err = CorruptImageError(f"{name} is damaged or incomplete"
                            + (f" ({detail})" if detail else "")
                            + ". Send the complete file again.")
    err.detail = detail  # type: ignore[attr-defined]
    return err


def pillow_bomb(exc: BaseException, max_pixels: int) -> ImageTooLargeError:
    """Pillow's own guard fired (its limit is below ours): same message, its numbers."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    size = pixel_count(int(found.group(1))) if found else "too many pixels"
    return ImageTooLargeError(f"The image has {size}; the limit is {pixel_count(limit)}. "
                              "Send a smaller picture.")


def too_many_pixels(w: int, h: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"The image is {w}x{h} pixels ({pixel_count(w * h)}); the limit "
                              f"is {pixel_count(max_pixels)}. Send a smaller picture.")

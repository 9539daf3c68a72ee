"""msgnet.imageio: every decoding case is generated here with Pillow, nothing is checked in."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from msgnet import imageio
from msgnet.imageio import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    bgr_to_image,
    decode_image,
    encode_image,
    fit_longest,
    image_to_bgr,
    load_image,
    resize_longest,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def close(a: tuple, b: tuple, tol: int) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b, strict=True))


def marked(width: int = 40, height: int = 24) -> Image.Image:
    """Blue picture with a red top-left corner: tells rotations and flips apart."""
    img = Image.new("RGB", (width, height), BLUE)
    img.paste(RED, (0, 0, 8, 8))
    return img


# ---------------------------------------------------------------------------- formats
@pytest.mark.parametrize("fmt,tol", [("PNG", 0), ("JPEG", 8), ("WEBP", 8), ("GIF", 0),
                                     ("BMP", 0), ("TIFF", 0)])
def test_each_supported_format_decodes_to_rgb(fmt: str, tol: int) -> None:
    img = marked()
    out = decode_image(save(img, fmt))
    assert out.mode == "RGB" and out.size == (40, 24)
    assert close(out.getpixel((2, 2)), RED, tol + 4)
    assert close(out.getpixel((30, 15)), BLUE, tol + 4)


@pytest.mark.parametrize("orientation,size,red_at", [
    (1, (40, 24), (2, 2)),     # as stored
    (3, (40, 24), (37, 21)),   # rotated 180
    (6, (24, 40), (21, 2)),    # camera held upright: rotate 90 clockwise to display
    (8, (24, 40), (2, 37)),    # rotate 90 counter-clockwise
    (2, (40, 24), (37, 2)),    # mirrored
])
def test_exif_orientation_is_applied(orientation: int, size: tuple, red_at: tuple) -> None:
    exif = Image.Exif()
    exif[imageio.EXIF_ORIENTATION] = orientation
    out = decode_image(save(marked(), "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == size
    assert close(out.getpixel(red_at), RED, 40)
    assert close(out.getpixel((size[0] // 2, size[1] // 2)), BLUE, 40)


def test_broken_exif_is_ignored_not_fatal() -> None:
    data = save(marked(), "JPEG", exif=b"Exif\x00\x00II*\x00garbage")
    assert decode_image(data).size == (40, 24)


# ---------------------------------------------------------------------------- modes
@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(mode: str) -> None:
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))            # fully transparent
    img.paste((200, 0, 0, 255), (0, 0, 5, 10))                 # opaque left half
    img.paste((0, 0, 0, 128), (5, 0, 10, 10))                  # half-transparent black
    out = decode_image(save(img.convert(mode), "PNG"))
    assert out.mode == "RGB"
    left, right = out.getpixel((1, 1)), out.getpixel((8, 8))
    assert close(left, (200, 0, 0) if mode == "RGBA" else (60,) * 3, 2)
    assert close(right, (127, 127, 127), 2)  # black at 50 % over white


def test_transparent_background_becomes_white_not_black() -> None:
    out = decode_image(save(Image.new("RGBA", (6, 6), (0, 0, 0, 0)), "PNG"))
    assert out.getpixel((3, 3)) == WHITE


def test_palette_with_transparency_is_composited_on_white() -> None:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    img.paste(1, (0, 0, 4, 8))
    out = decode_image(save(img, "PNG", transparency=0))
    assert Image.open(io.BytesIO(save(img, "PNG", transparency=0))).mode == "P"
    assert out.getpixel((1, 1)) == RED
    assert out.getpixel((6, 6)) == WHITE  # transparent index 0 (black) shows as white


@pytest.mark.parametrize("mode,value,expected", [("L", 77, (77, 77, 77)),
                                                 ("1", 1, WHITE)])
def test_grayscale_and_bilevel(mode: str, value: int, expected: tuple) -> None:
    img = Image.new(mode, (9, 7), value)
    out = decode_image(save(img, "PNG"))
    assert out.mode == "RGB" and out.getpixel((4, 3)) == expected


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    img = Image.new("I;16", (6, 4), 0)
    img.putpixel((0, 0), 40000)   # 40000 / 257 = 155.6 -> 156
    img.putpixel((1, 0), 65535)
    img.putpixel((2, 0), 200)     # dark: 200 / 257 -> 1, not 200
    data = save(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = decode_image(data)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (156,) * 3
    assert out.getpixel((1, 0)) == WHITE
    assert out.getpixel((2, 0)) == (1,) * 3


def test_cmyk_jpeg_is_converted() -> None:
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no black, full magenta+yellow = red
    data = save(img, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = decode_image(data)
    assert out.mode == "RGB"
    assert close(out.getpixel((8, 8)), RED, 12)


def test_cmyk_tiff_is_converted() -> None:
    out = decode_image(save(Image.new("CMYK", (8, 8), (255, 0, 255, 0)), "TIFF"))
    assert out.getpixel((4, 4)) == GREEN


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (12, 10), c) for c in (GREEN, RED, BLUE)]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    out = decode_image(data)
    assert out.size == (12, 10) and out.getpixel((5, 5)) == GREEN


def test_animated_webp_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (12, 10), c) for c in (BLUE, RED)]
    data = save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50,
                lossless=True)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    out = decode_image(data)
    assert close(out.getpixel((5, 5)), BLUE, 2)


# ---------------------------------------------------------------------------- errors
def test_truncated_jpeg_is_corrupt() -> None:
    rng = np.random.default_rng(0)
    data = save(Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(CorruptImageError, match="JPEG file is damaged or incomplete") as info:
        decode_image(data[: len(data) // 2])
    assert info.value.code == "corrupt_image" and info.value.http_status == 400


@pytest.mark.parametrize("cut", [12, 60])
def test_truncated_png_is_corrupt(cut: int) -> None:
    data = save(Image.new("RGB", (40, 40), RED), "PNG")
    with pytest.raises(CorruptImageError, match="PNG file"):
        decode_image(data[:cut])


@pytest.mark.parametrize("data,kind", [
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n", "PDF"),
    (b"Hello, this is a plain text file.\n", "text"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "web page"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
    (b"PK\x03\x04" + b"\x00" * 40, "ZIP"),
    (b"\x00\x13\x88\xfe\xfe\x01" * 20, "not an image this service can read"),
])
def test_non_images_are_named_in_a_readable_message(data: bytes, kind: str) -> None:
    with pytest.raises(NotAnImageError) as info:
        decode_image(data)
    assert kind in str(info.value)
    assert "Send a JPEG, PNG or WebP" in str(info.value)
    assert info.value.code == "not_an_image" and info.value.http_status == 400


def test_a_heic_header_without_a_picture_is_a_damaged_heic() -> None:
    """HEIC is read here (pillow-heif), so its signature with nothing after it is a damaged
    HEIC; without pillow-heif it is "not supported" (tests/test_avif_heic.py)."""
    pytest.importorskip("pillow_heif")
    header = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    with pytest.raises(CorruptImageError, match="HEIC file is damaged"):
        decode_image(header)


def test_known_but_unsupported_format_is_named() -> None:
    with pytest.raises(NotAnImageError, match="ICO images are not supported"):
        decode_image(save(Image.new("RGB", (16, 16)), "ICO"))


def test_empty_file() -> None:
    with pytest.raises(NotAnImageError, match="empty"):
        decode_image(b"")


def test_byte_cap() -> None:
    data = save(Image.new("RGB", (32, 32), RED), "PNG")
    assert decode_image(data, max_bytes=len(data)).size == (32, 32)
    with pytest.raises(ImageTooLargeError, match="limit") as info:
        decode_image(data, max_bytes=len(data) - 1)
    assert info.value.code == "too_large" and info.value.http_status == 413


def _png_header_only(width: int, height: int, bit_depth: int = 1, color: int = 0) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (the pixel data is absent)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("width,height,shown", [
    (9000, 8000, "9000x8000 pixels (72.0 megapixels); the limit is 64.0 megapixels"),
    (20000, 20000, "400.0 megapixels"),  # past Pillow's own guard too: same error
])
def test_pixel_bomb_is_refused_from_the_header_without_decoding(monkeypatch, width: int,
                                                               height: int, shown: str) -> None:
    data = _png_header_only(width, height)
    assert len(data) < 200

    def no_load(self):  # decoding pixels would be the bug
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_load)
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(data)
    assert shown in str(info.value)
    assert info.value.http_status == 413


def test_pixel_cap_is_configurable() -> None:
    data = save(Image.new("RGB", (50, 40), RED), "PNG")
    assert decode_image(data, max_pixels=2000).size == (50, 40)
    with pytest.raises(ImageTooLargeError, match="50x40"):
        decode_image(data, max_pixels=1999)


def test_pillow_bomb_guard_becomes_too_large(monkeypatch) -> None:
    """Above Pillow's own limit its warning/error is ours too, whatever max_pixels says."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = save(Image.new("RGB", (40, 40)), "PNG")  # 1600 px: Pillow warns
    with pytest.raises(ImageTooLargeError):
        decode_image(data)
    data = save(Image.new("RGB", (50, 50)), "PNG")  # 2500 px > 2x: Pillow raises
    with pytest.raises(ImageTooLargeError):
        decode_image(data)


def test_errors_share_a_base_class() -> None:
    for cls in (NotAnImageError, CorruptImageError, ImageTooLargeError):
        assert issubclass(cls, ImageError) and issubclass(cls, ValueError)
        assert isinstance(cls.code, str) and isinstance(cls.http_status, int)


def test_load_image_checks_the_byte_cap_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(save(marked(), "PNG"))
    assert load_image(path).size == (40, 24)
    with pytest.raises(ImageTooLargeError, match="photo.png"):
        load_image(path, max_bytes=10)
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.jpg")


def test_jpeg_draft_decodes_big_photos_at_a_reduced_scale() -> None:
    data = save(Image.new("RGB", (800, 600), GREEN), "JPEG")
    assert decode_image(data, draft_longest=100).size == (100, 75)  # 1/8 is exactly enough
    assert decode_image(data, draft_longest=150).size == (200, 150)  # 1/4: never below 150
    assert decode_image(data).size == (800, 600)


# ---------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("w,h,longest,expected", [
    (300, 200, 96, (96, 64)), (200, 300, 96, (64, 96)), (100, 100, 50, (50, 50)),
    (1000, 3, 100, (100, 1)), (33, 17, 330, (330, 170)),
])
def test_fit_longest(w: int, h: int, longest: int, expected: tuple) -> None:
    assert fit_longest(w, h, longest) == expected


def test_fit_longest_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        fit_longest(0, 10, 10)


def test_resize_longest_keeps_aspect_and_is_a_noop_at_size() -> None:
    img = marked(300, 200)
    assert resize_longest(img, 96).size == (96, 64)
    assert resize_longest(img, 600).size == (600, 400)
    assert resize_longest(img, 300) is img


# ---------------------------------------------------------------------------- tensors
def test_bgr_roundtrip_and_channel_order() -> None:
    img = marked(10, 6)
    t = image_to_bgr(img)
    assert t.shape == (1, 3, 6, 10) and t.dtype == torch.float32
    assert t[0, :, 0, 0].tolist() == [0.0, 0.0, 255.0]     # red pixel is B=0, G=0, R=255
    assert t[0, :, 5, 9].tolist() == [255.0, 0.0, 0.0]     # blue pixel
    back = bgr_to_image(t)
    assert back.mode == "RGB" and back.tobytes() == img.tobytes()


def test_bgr_to_image_clamps_and_rounds() -> None:
    t = torch.tensor([[[[-20.0, 300.0]], [[127.4, 127.6]], [[float("nan"), 0.5]]]])
    img = bgr_to_image(t)
    assert img.size == (2, 1)
    assert img.getpixel((0, 0)) == (0, 127, 0)     # R from channel 2 (nan -> 0), B clamped
    assert img.getpixel((1, 0)) == (0, 128, 255)   # 0.5 rounds to even; 300 -> 255


def test_image_to_bgr_accepts_other_modes() -> None:
    assert image_to_bgr(Image.new("L", (3, 2), 9))[0, :, 0, 0].tolist() == [9.0] * 3


# ---------------------------------------------------------------------------- encoding
@pytest.mark.parametrize("fmt,ctype,magic", [("jpeg", "image/jpeg", b"\xff\xd8"),
                                             ("jpg", "image/jpeg", b"\xff\xd8"),
                                             ("PNG", "image/png", b"\x89PNG")])
def test_encode_image(fmt: str, ctype: str, magic: bytes) -> None:
    body, content_type = encode_image(marked(), fmt=fmt)
    assert content_type == ctype and body.startswith(magic)
    assert decode_image(body).size == (40, 24)


def test_png_is_lossless_and_unknown_formats_fail() -> None:
    img = marked()
    body, _ = encode_image(img, "png")
    assert decode_image(body).tobytes() == img.tobytes()
    with pytest.raises(ValueError, match="jpeg or png"):
        encode_image(img, "gif")

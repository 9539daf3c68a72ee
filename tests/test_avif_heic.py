"""Inputs people send (issue 41, item 6): AVIF (Pillow reads it natively) and iPhones' HEIC
(through pillow-heif), both generated here, decoded by msgnet and stylized through msgnet and
through the TorchServe handler; and the clear error when pillow-heif is missing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from handler_harness import handle, serve
from PIL import Image, features
from weights_factory import make_tiny_weights

from msgnet import cli, imageio
from msgnet.imageio import decode as imageio_decode
from msgnet.inference.stylize import Stylizer

COLOR = (200, 40, 30)


def photo(w: int = 96, h: int = 64) -> Image.Image:
    """A photo-like picture: a colour field with a gradient (codecs smear flat noise)."""
    ramp = np.linspace(0, 50, w, dtype=np.float32)[None, :, None]
    base = np.array(COLOR, dtype=np.float32)[None, None, :]
    return Image.fromarray(np.clip(base + ramp, 0, 255).astype(np.uint8).repeat(h, axis=0))


def avif_bytes(img: Image.Image) -> bytes:
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    buf = io.BytesIO()
    img.save(buf, "AVIF", quality=90)
    return buf.getvalue()


def heic_bytes(img: Image.Image) -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif")
    try:
        heif = pillow_heif.from_pillow(img)
        buf = io.BytesIO()
        heif.save(buf, format="HEIF", quality=90)
    except Exception as exc:  # a libheif built without an HEVC encoder
        pytest.skip(f"pillow_heif cannot encode HEIC here: {exc}")
    return buf.getvalue()


@pytest.fixture(params=["avif", "heic"])
def encoded(request) -> tuple[str, bytes]:
    img = photo()
    return request.param, (avif_bytes if request.param == "avif" else heic_bytes)(img)


def test_avif_and_heic_decode_upright_and_in_colour(encoded):
    kind, data = encoded
    assert data[4:8] == b"ftyp"  # ISO-BMFF, as phones write them
    img = imageio.decode_image(data)
    assert img.mode == "RGB" and img.size == (96, 64)
    mean = np.asarray(img, dtype=np.float32).reshape(-1, 3).mean(axis=0)
    expected = np.array(COLOR) + 25  # the gradient's mean
    assert np.abs(mean - expected).max() < 12, (kind, mean)
    assert imageio.sniff_image_format(data) == {"avif": "AVIF", "heic": "HEIC"}[kind]
    assert {"avif": "AVIF", "heic": "HEIF"}[kind] in imageio.readable_formats()


def test_a_truncated_avif_or_heic_is_damaged_not_unsupported(encoded):
    kind, data = encoded
    with pytest.raises(imageio.ImageError) as err:
        imageio.decode_image(data[: len(data) // 2])
    assert err.value.code == "corrupt_image", (kind, str(err.value))


def test_the_pixel_cap_holds_for_heic_and_avif(encoded):
    _, data = encoded
    with pytest.raises(imageio.ImageTooLargeError):
        imageio.decode_image(data, max_pixels=96 * 64 - 1)


def test_avif_and_heic_stylize_through_msgnet(encoded, tiny_weights_path: Path, tmp_path):
    """``python -m msgnet stylize photo.avif`` (and .heic), as a user runs it."""
    kind, data = encoded
    (tmp_path / f"photo.{kind}").write_bytes(data)
    out = tmp_path / "out.png"
    assert cli.main(["stylize", str(tmp_path / f"photo.{kind}"), "--preset", "candy",
                     "--size", "64", "-o", str(out), "--weights", str(tiny_weights_path)]) == 0
    assert Image.open(out).size == (64, 43)
    stylizer = Stylizer.from_file(tiny_weights_path, max_size=256, default_size=64)
    assert stylizer.stylize(imageio.decode_image(data), "candy", size=48).size == (48, 32)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    make_tiny_weights(directory / "tiny.pt")
    return serve(directory, "tiny.pt", {"handler": {"max_size": 512, "warmup": 0}})


def test_avif_and_heic_stylize_through_the_handler(encoded, served):
    kind, data = encoded
    out, context = handle(served, [{"content": bytearray(data), "style_id": bytearray(b"candy"),
                                    "size": b"64"},
                                   {"content": bytearray(avif_bytes(photo(32, 32))),
                                    "style": bytearray(data), "size": b"64"}])
    assert [context.get_response_status(i)[0] for i in range(2)] == [200, 200], out
    assert Image.open(io.BytesIO(out[0])).size == (64, 43), kind
    assert Image.open(io.BytesIO(out[1])).size == (64, 64)  # the style as AVIF/HEIC too


def test_without_pillow_heif_a_heic_gets_the_iphone_tip(monkeypatch, served):
    data = heic_bytes(photo())
    without = tuple(f for f in imageio.readable_formats() if f != "HEIF")
    monkeypatch.setattr(imageio_decode, "_registered_formats", lambda: without)
    with pytest.raises(imageio.NotAnImageError) as err:
        imageio.decode_image(data)
    message = str(err.value)
    assert "HEIC" in message and "pillow-heif" in message and "Most Compatible" in message
    out, context = handle(served, [{"content": bytearray(data),
                                    "style_id": bytearray(b"candy")}])
    answer = json.loads(out[0])
    assert context.get_response_status(0)[0] == 400
    assert answer["code"] == "not_an_image" and "Most Compatible" in answer["message"]
    assert answer["field"] == "content"


def test_register_heif_reports_a_missing_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails as if not installed
    assert imageio.register_heif() is False

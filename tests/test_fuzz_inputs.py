"""Property-based input tests: every upload either becomes an image of the documented size and
aspect or fails with the documented error and a readable message, in process
(msgnet.imageio.decode_image + msgnet.inference.stylize.Stylizer) and through the TorchServe
handler's per-request path. Never an unexpected exception, a 500, or a traceback.

The normal suite runs a seeded, bounded number of examples (derandomized, no example database).
``MSGNET_FUZZ_SCALE=50`` multiplies the example counts and draws fresh random examples
(docs/reliability.md has the longer run and its figures).
"""

from __future__ import annotations

import io
import json
import os

import pytest
from fuzz_inputs import Upload, broken_uploads, sizes, valid_uploads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from ts.context import Context, RequestProcessor

from handler.msgnet_handler import MsgnetHandler
from msgnet.animation.decode import is_clip
from msgnet.imageio import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    decode_image,
    fit_longest,
)
from msgnet.inference.stylize import Stylizer

SCALE = float(os.environ.get("MSGNET_FUZZ_SCALE", "1"))
CAP = 1 << 20  # the pixel cap under test (the served one, 64 MP, is the same code path)
STYLE_SIZES = st.sampled_from([16, 17, 23, 32, 48, 64])


def fuzz(examples: int):
    """Seeded and bounded in the normal suite; scaled and random under MSGNET_FUZZ_SCALE."""
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None,
                    derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def assert_readable(message: str) -> None:
    """One line a person can read: no traceback, no object repr, bounded length."""
    assert message and message.strip() == message, repr(message)
    assert len(message) <= 400, message
    assert "\n" not in message and "Traceback" not in message, message
    assert " object at 0x" not in message, message
    assert message.isprintable(), repr(message)


def decode_or_error(upload: Upload, max_pixels: int = CAP) -> Image.Image | None:
    """decode_image's answer: the image, or None after checking the error is a documented one."""
    try:
        img = decode_image(upload.data, max_pixels=max_pixels)
    except (NotAnImageError, CorruptImageError, ImageTooLargeError) as exc:
        assert_readable(str(exc))
        assert exc.http_status in (400, 413)
        return None
    assert img.mode == "RGB", (upload.kind, img.mode)
    return img


@pytest.fixture(scope="module")
def stylizer(tiny_weights_path) -> Stylizer:
    return Stylizer.from_file(tiny_weights_path, max_size=128, default_size=64,
                              default_style_size=64)


# ------------------------------------------------------------------ in process
@fuzz(16)
@given(upload=valid_uploads(), size=STYLE_SIZES)
def test_valid_upload_decodes_to_its_size_and_stylizes_to_the_aspect(stylizer, upload, size):
    img = decode_or_error(upload)
    if upload.refused:
        assert img is None, upload.kind
        return
    assert img is not None, upload.kind
    if upload.size is not None:
        assert img.size == upload.size, upload.kind
    out = stylizer.stylize(img, "candy", size=size)
    assert out.size == fit_longest(img.width, img.height, size), upload.kind
    assert out.mode == "RGB"


@fuzz(40)
@given(upload=valid_uploads(max_area=1 << 12))
def test_over_the_pixel_cap_is_413_before_decoding(upload):
    if upload.refused or upload.size is None or upload.size[0] * upload.size[1] < 2:
        return
    w, h = upload.size
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(upload.data, max_pixels=w * h - 1)
    assert_readable(str(info.value))
    assert "limit" in str(info.value)


@fuzz(60)
@given(upload=broken_uploads())
def test_broken_bytes_give_an_image_or_a_documented_error(stylizer, upload):
    img = decode_or_error(upload)
    if img is not None:
        out = stylizer.stylize(img, "candy", size=16)
        assert out.size == fit_longest(img.width, img.height, 16)


@fuzz(4)
@given(wh=sizes(max_area=1 << 14), size=STYLE_SIZES, style_wh=sizes(max_area=1 << 12))
def test_any_aspect_stylizes_with_an_uploaded_style(stylizer, wh, size, style_wh):
    content = Image.new("RGB", wh, (90, 140, 30))
    style = Image.new("RGB", style_wh, (200, 10, 120))
    out = stylizer.stylize(content, stylizer.style_target(style, 16), size=size)
    assert out.size == fit_longest(*wh, size)


# ------------------------------------------------------------------ the handler
class NullMetrics:
    def add_metric(self, *args, **kwargs) -> None:
        pass


@pytest.fixture(scope="module")
def served(tiny_weights_path):
    manifest = {"model": {"modelName": "msgnet", "serializedFile": tiny_weights_path.name}}
    config = {"batchSize": 4, "maxWorkers": 1,
              "handler": {"max_size": 1024, "cache_size": 4, "max_pixels": CAP,
                          "warmup": 0}}
    context = Context("msgnet", str(tiny_weights_path.parent), manifest, 4, None, "0.12.0",
                      metrics=NullMetrics(), model_yaml_config=config)
    handler = MsgnetHandler()
    handler.initialize(context)
    return handler, context


def answer(served, fields: dict) -> tuple[int, bytes | str, str]:
    handler, context = served
    context.request_processor = [RequestProcessor({})]
    out = handler.handle([fields], context)
    return context.get_response_status(0)[0], out[0], context.get_response_content_type(0)


def assert_clean_4xx(status: int, body, kind: str) -> dict:
    assert 400 <= status < 500, (kind, status, body)
    error = json.loads(body)
    assert error["code"] != "internal_error", kind
    assert_readable(error["message"])
    return error


@fuzz(14)
@given(upload=st.one_of(valid_uploads(max_area=1 << 12), broken_uploads()),
       size=st.sampled_from([64, 65, 97]), style_upload=st.booleans())
def test_handler_answers_an_image_of_the_size_or_a_clean_4xx(served, upload, size,
                                                            style_upload):
    fields = {"content": bytearray(upload.data), "size": str(size).encode()}
    if style_upload:
        fields["style"] = bytearray(upload.data)
        fields["style_size"] = b"64"
    else:
        fields["style_id"] = b"candy"
    status, body, ctype = answer(served, fields)
    if status == 200:
        # an animation as content takes the clip path and comes back a GIF (issue 14)
        assert ctype == ("image/gif" if is_clip(upload.data) else "image/jpeg"), upload.kind
        out = Image.open(io.BytesIO(body))
        if upload.size is not None:
            assert out.size == fit_longest(*upload.size, size), upload.kind
        assert max(out.size) == size
        return
    error = assert_clean_4xx(status, body, upload.kind)
    assert upload.size is None or upload.refused, (upload.kind, error)
    documented = ("not_an_image", "corrupt_image", "too_large") + (
        ("missing_field",) if not upload.data else ()) + (  # an empty part is a missing one
        ("corrupt_clip",) if is_clip(upload.data) else ())  # a damaged animation
    assert error["code"] in documented, error
    assert error["field"] in ("content", "style"), error


def test_image_error_codes_are_the_documented_ones():
    assert {c.code for c in (NotAnImageError, CorruptImageError, ImageTooLargeError)} == {
        "not_an_image", "corrupt_image", "too_large"}
    assert issubclass(ImageTooLargeError, ImageError)

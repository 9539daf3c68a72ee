"""The style controls through the TorchServe handler: each REST field, each of its errors (a
400 whose message names the field), and the handler's answers driven by a fake context."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from handler_harness import handle, serve
from PIL import Image
from weights_factory import make_tiny_weights

from handler.answers import SHEET_HEADER
from handler.errors import RequestError
from handler.parsing import SheetRequest, StylizeRequest, parse_request
from handler.settings import HandlerSettings

SETTINGS = HandlerSettings()


def png_bytes(w: int = 40, h: int = 30, color=(200, 30, 60), seed: int | None = None) -> bytes:
    img = Image.new("RGB", (w, h), color)
    if seed is not None:
        rng = np.random.default_rng(seed)
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def parse(fields: dict, settings: HandlerSettings = SETTINGS):
    return parse_request(fields, settings)


def expect_400(fields: dict, field: str) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse(fields)
    assert (info.value.status, info.value.code) == (400, "bad_option"), info.value
    assert info.value.message.startswith(field), info.value.message
    return info.value


BASE = {"content": b"a", "style_id": b"candy"}


# ------------------------------------------------------------------ strength, keep_colors
@pytest.mark.parametrize(("raw", "expected"), [(b"0.5", 0.5), ("0", 0.0), (b"1", 1.0)])
def test_strength_from_a_form(raw, expected):
    req = parse({**BASE, "strength": raw})
    assert isinstance(req, StylizeRequest) and req.strength == expected


def test_strength_and_keep_colors_in_json_and_their_defaults():
    req = parse({"body": {"content": base64.b64encode(b"x").decode(), "style_id": "udnie",
                          "strength": 0.25, "keep_colors": True}})
    assert (req.strength, req.keep_colors) == (0.25, True)
    plain = parse(dict(BASE))
    assert (plain.strength, plain.keep_colors, plain.brush) == (1.0, False, None)


@pytest.mark.parametrize("raw", [b"1.5", b"-0.1", b"half", b"nan", b"50%"])
def test_bad_strength_is_a_400_naming_the_field(raw):
    expect_400({**BASE, "strength": raw}, "strength")


def test_json_bool_strength_is_refused():
    expect_400({"body": {"content": "eA==", "style_id": "c", "strength": True}}, "strength")


@pytest.mark.parametrize(("raw", "expected"), [(b"true", True), (b"ON", True), (b"1", True),
                                               (b"false", False), (b"no", False)])
def test_keep_colors_values(raw, expected):
    assert parse({**BASE, "keep_colors": raw}).keep_colors is expected


def test_bad_keep_colors():
    expect_400({**BASE, "keep_colors": b"maybe"}, "keep_colors")


# ------------------------------------------------------------------ brush
def test_brush_with_an_uploaded_style():
    req = parse({"content": b"a", "style": b"s", "brush": b"Large"})
    assert req.brush == "large"


@pytest.mark.parametrize("fields", [
    {**BASE, "brush": b"huge"},
    {**BASE, "brush": b"small"},                                     # presets only
    {"content": b"a", "style": b"s", "brush": b"small", "style_size": b"256"},
])
def test_brush_errors(fields):
    expect_400(fields, "brush")


# ------------------------------------------------------------------ several styles
def test_preset_mix_weights_are_normalised():
    req = parse({"content": b"a", "style_id": b"candy:0.7, udnie:0.3"})
    assert [(s.preset, round(s.weight, 6)) for s in req.styles] == [("candy", 0.7),
                                                                     ("udnie", 0.3)]
    listed = parse({"body": {"content": "eA==", "style_id": ["candy:3", "udnie"]}})
    assert [s.weight for s in listed.styles] == [0.75, 0.25]


def test_presets_and_uploads_mix_with_their_weights():
    req = parse({"content": b"a", "style_id": b"candy:2", "style": b"s1",
                 "style_2_tensor": b"t2", "style_2_weight": b"1", "style_weight": "1"})
    assert [(s.preset, s.payload and s.payload.field, s.weight) for s in req.styles] == [
        ("candy", None, 0.5), (None, "style", 0.25), (None, "style_2_tensor", 0.25)]
    assert (req.style.field, req.style_id) == ("style", "candy")


@pytest.mark.parametrize(("fields", "field"), [
    ({"content": b"a", "style_id": b"candy:-1"}, "style_id"),
    ({"content": b"a", "style_id": b"candy:0,udnie:0"}, "style weights"),
    ({"content": b"a", "style_id": b",".join([b"candy"] * 9)}, "style_id/style"),
    ({"content": b"a", "style": b"s", "style_weight": b"heavy"}, "style_weight"),
    ({"content": b"a", "style": b"s", "style_weight": b"-2"}, "style_weight"),
    ({"content": b"a", "style_9": b"s"}, "style_9"),
])
def test_mix_errors(fields, field):
    expect_400(fields, field)


def test_weights_alone_are_no_style():
    with pytest.raises(RequestError) as info:
        parse({"content": b"a", "style_weight": b"1"})
    assert info.value.code == "missing_field"


# ------------------------------------------------------------------ action=sheet
def test_sheet_request():
    req = parse({"content": b"a", "action": b"sheet", "strength": b"0.5"})
    assert req == SheetRequest(parse({"content": b"a", "style_id": b"c"}).content, 256, "jpeg",
                               0.5, False)
    assert parse({"body": {"action": "sheet", "content": "eA==", "size": 128,
                           "format": "png", "keep_colors": "yes"}}).size == 128


@pytest.mark.parametrize(("fields", "field"), [
    ({"content": b"a", "action": b"sheet", "size": b"600"}, "size"),
    ({"content": b"a", "action": b"sheet", "style_id": b"candy"}, "style_id"),
    ({"content": b"a", "action": b"sheet", "brush": b"small"}, "brush"),
    ({"content": b"a", "action": b"sheet", "strength": b"2"}, "strength"),
])
def test_sheet_errors(fields, field):
    expect_400(fields, field)
    with pytest.raises(RequestError) as info:
        parse({"action": b"sheet"})
    assert info.value.status == 422


# ------------------------------------------------------------------ the handler
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    make_tiny_weights(directory / "tiny.pt")
    config = {"batchSize": 4, "maxWorkers": 1,
              "handler": {"max_size": 1024, "cache_size": 4, "warmup": 0, "threads": 1}}
    return serve(directory, "tiny.pt", config)


def pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), dtype=np.int16)


def test_handler_strength_zero_is_the_photo_and_mix_of_one_is_the_preset(served):
    photo = png_bytes(64, 48, seed=1)
    base = {"content": bytearray(photo), "size": b"64", "format": b"png"}
    out, context = handle(served, [
        {**base, "style_id": b"candy", "strength": b"0"},
        {**base, "style_id": b"candy"},
        {**base, "style_id": b"candy:1"},
        {**base, "style_id": b"candy:0.5,udnie:0.5", "strength": b"0.5",
         "keep_colors": b"true"},
    ])
    assert [context.get_response_status(i)[0] for i in range(4)] == [200] * 4
    assert np.abs(pixels(out[0]) - pixels(photo)).max() <= 1
    assert out[1] == out[2]
    assert pixels(out[3]).shape == (48, 64, 3)
    assert context.get_response_headers(3)["X-Msgnet-Style-Cache"] == "preset"


def test_handler_brush_encodes_uploads_at_its_size(served):
    handler, _ = served
    style = png_bytes(40, 40, seed=4)
    common = {"content": bytearray(png_bytes(32, 32, seed=2)), "style": bytearray(style),
              "size": b"64"}
    out, context = handle(served, [{**common, "brush": b"large", "style_id": b"udnie:0.5"}])
    assert context.get_response_status(0)[0] == 200
    assert context.get_response_headers(0)["X-Msgnet-Style-Cache"] == "miss"
    size = handler.stylizer.brush_style_size("large")
    assert size == 256
    _, context = handle(served, [{**common, "style_size": str(size).encode()}])
    assert context.get_response_headers(0)["X-Msgnet-Style-Cache"] == "hit"


def test_handler_contact_sheet(served):
    out, context = handle(served, [
        {"content": bytearray(png_bytes(90, 60, seed=3)), "action": b"sheet", "size": b"64",
         "format": b"png"},
        {"content": bytearray(b"not an image"), "action": b"sheet"},
    ])
    assert [context.get_response_status(i)[0] for i in range(2)] == [200, 400]
    assert context.get_response_content_type(0) == "image/png"
    assert context.get_response_headers(0)[SHEET_HEADER] == "original,candy,mosaic,udnie"
    # 2x2 cells of 64x43, 22 px labels, 6 px gutters
    assert Image.open(io.BytesIO(out[0])).size == (2 * 70 + 6, 2 * (43 + 22 + 6) + 6)
    assert json.loads(out[1])["code"] == "not_an_image"


def test_handler_listing_describes_the_controls(served):
    out, _ = handle(served, [{"body": {"action": "presets"}}])
    controls = json.loads(out[0])["controls"]
    assert controls == {"strength": [0.0, 1.0], "keep_colors": True,
                        "brushes": {"small": 768, "medium": 512, "large": 256},
                        "max_styles": 8, "sheet_sizes": [64, 512]}


def test_uploads_default_to_the_weights_training_style_size(tmp_path):
    make_tiny_weights(tmp_path / "w.pt", metadata={"style_encoder_size": 96})
    config = {"batchSize": 1, "maxWorkers": 1,
              "handler": {"max_size": 512, "warmup": 0, "threads": 1}}
    handler, context = serve(tmp_path, "w.pt", config, batch_size=1)
    out, _ = handle((handler, context), [{"body": {"action": "presets"}}])
    listing = json.loads(out[0])
    assert listing["default_style_size"] == 96
    assert listing["controls"]["brushes"] == {"small": 144, "medium": 96, "large": 48}
    request = parse_request({"content": b"a", "style": b"b"}, handler.settings)
    assert request.style_size == 96

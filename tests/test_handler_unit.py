"""Unit tests of the TorchServe handler's pieces: request parsing, tensor decoding, the style
cache, settings, and the handler itself driven by a fake TorchServe context (the integration
tests in tests/integration/ run the same code inside a real TorchServe)."""

from __future__ import annotations

import base64
import io
import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save as save_safetensors
from ts.context import Context, RequestProcessor
from weights_factory import make_tiny_weights

import tsclient
from handler.actions import ActionRequest
from handler.errors import RequestError, from_exception
from handler.msgnet_handler import MsgnetHandler
from handler.parsing import StylizeRequest, parse_request
from handler.settings import HandlerSettings
from handler.style_cache import StyleCache
from handler.tensors import array_to_image, decode_tensor

SETTINGS = HandlerSettings()


def png_bytes(w: int = 40, h: int = 30, color=(200, 30, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def expect_error(fields: dict, status: int, code: str, settings=SETTINGS) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_request(fields, settings)
    assert (info.value.status, info.value.code) == (status, code), info.value
    return info.value


# ------------------------------------------------------------------ parsing
def test_multipart_fields_with_defaults():
    req = parse_request({"content": bytearray(b"abc"), "style_id": bytearray(b"candy")}, SETTINGS)
    assert isinstance(req, StylizeRequest)
    assert req.content.data == b"abc" and req.content.kind == "image"
    assert (req.style, req.style_id) == (None, "candy")
    assert (req.size, req.style_size, req.fmt) == (512, 512, "jpeg")


def test_options_as_text_bytes_and_numbers():
    req = parse_request({"content": b"a", "style": b"b", "size": "768", "style_size": b"256",
                         "format": bytearray(b"PNG")}, SETTINGS)
    assert (req.size, req.style_size, req.fmt) == (768, 256, "png")
    assert req.style.data == b"b"


def test_text_part_is_turned_back_into_bytes():
    # TorchServe decodes a text/plain file part to str; the decoder must see the bytes again
    req = parse_request({"content": "héllo", "style_id": "candy"}, SETTINGS)
    assert req.content.data == "héllo".encode()


def test_json_body_with_base64_and_data_url():
    body = {"content": "data:image/png;base64," + base64.b64encode(b"\x89PNGxx").decode(),
            "style": base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode().rstrip("="),
            "size": 300, "format": "jpg"}
    req = parse_request({"body": body}, SETTINGS)
    assert req.content.data == b"\x89PNGxx"
    assert req.style.data == b"\xfb\xff\xfe"
    assert (req.size, req.fmt) == (300, "jpeg")


def test_raw_json_bytes_body_and_query_options_merge():
    raw = json.dumps({"content": base64.b64encode(b"x").decode(), "style_id": "udnie"}).encode()
    req = parse_request({"body": bytearray(raw), "size": bytearray(b"640")}, SETTINGS)
    assert (req.content.data, req.style_id, req.size) == (b"x", "udnie", 640)


def test_raw_image_body_is_the_content():
    req = parse_request({"body": bytearray(b"\xff\xd8jpeg"), "style_id": b"candy"}, SETTINGS)
    assert req.content.data == b"\xff\xd8jpeg"


def test_tensor_fields():
    req = parse_request({"content_tensor": b"\x93NUMPY..", "style_tensor": b"st"}, SETTINGS)
    assert (req.content.kind, req.content.field) == ("tensor", "content_tensor")
    assert req.style.kind == "tensor"


@pytest.mark.parametrize("action", ["presets", "PRESETS"])
def test_presets_action_json_or_form(action):
    assert parse_request({"body": {"action": action}}, SETTINGS) == ActionRequest("presets", None)
    assert parse_request({"action": bytearray(action.encode())}, SETTINGS).action == "presets"


def test_preview_action_needs_style_id():
    assert parse_request({"body": {"action": "preview", "style_id": "candy"}},
                         SETTINGS) == ActionRequest("preview", "candy")
    expect_error({"body": {"action": "preview"}}, 422, "missing_field")


@pytest.mark.parametrize("fields, status, code", [
    ({"style_id": b"candy"}, 422, "missing_field"),
    ({"content": b"a"}, 422, "missing_field"),
    ({"content": b"", "style_id": b"candy"}, 422, "missing_field"),
    ({}, 422, "missing_field"),
    ({"content": b"a", "content_tensor": b"t", "style_id": b"c"}, 400, "bad_option"),
    ({"content": b"a", "style_id": b"c", "size": b"99999"}, 400, "bad_option"),
    ({"content": b"a", "style_id": b"c", "size": b"10"}, 400, "bad_option"),
    ({"content": b"a", "style_id": b"c", "size": b"51.5"}, 400, "bad_option"),
    ({"content": b"a", "style_id": b"c", "size": b"big"}, 400, "bad_option"),
    ({"content": b"a", "style_id": b"c", "style_size": b"4096"}, 400, "bad_option"),
    ({"content": b"a", "style_id": b"c", "format": b"gif"}, 400, "bad_option"),
    ({"content": b"a", "style_id": b"c", "action": b"explode"}, 400, "bad_option"),
    ({"body": bytearray(b"{not json")}, 400, "bad_option"),
    ({"body": [1, 2]}, 400, "bad_option"),
    ({"body": {"content": "%%%not base64", "style_id": "c"}}, 400, "bad_option"),
    ({"body": {"content": 12, "style_id": "c"}}, 400, "bad_option"),
])
def test_request_errors(fields, status, code):
    error = expect_error(fields, status, code)
    assert json.loads(error.to_json()) == {"code": code, "message": error.message,
                                           **({"field": error.field} if error.field else {})}


@pytest.mark.parametrize("fields, field", [
    ({"style_id": b"candy"}, "content"),
    ({"content": b"a"}, "style"),
    ({"content": b"a", "style_id": b"c", "size": b"10"}, "size"),
    ({"content": b"a", "style_id": b"c", "format": b"gif"}, "format"),
    ({"body": {"content": "%%%not base64", "style_id": "c"}}, "content"),
])
def test_request_errors_name_their_field(fields, field):
    with pytest.raises(RequestError) as info:
        parse_request(fields, SETTINGS)
    assert info.value.field == field


def test_byte_cap_raw_and_base64():
    small = HandlerSettings(max_bytes=1000)
    err = expect_error({"content": b"x" * 1001, "style_id": b"c"}, 413, "too_large", small)
    assert "limit" in err.message
    parse_request({"content": b"x" * 1000, "style_id": b"c"}, small)  # exactly at the cap
    encoded = base64.b64encode(b"x" * 1200).decode()
    expect_error({"body": {"content": encoded, "style_id": "c"}}, 413, "too_large", small)


def test_max_size_comes_from_settings():
    settings = HandlerSettings(max_size=1024, default_size=256, default_style_size=256)
    assert parse_request({"content": b"a", "style_id": b"c"}, settings).size == 256
    expect_error({"content": b"a", "style_id": b"c", "size": b"1025"}, 400, "bad_option",
                 settings)


# ------------------------------------------------------------------ tensors
def test_npy_uint8_hwc_roundtrip():
    array = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    image = decode_tensor(npy_bytes(array), max_pixels=10_000)
    assert image.size == (30, 20) and image.mode == "RGB"
    assert np.array_equal(np.asarray(image), array)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_npy_float_nchw_in_both_ranges(scale):
    rgb = np.zeros((1, 3, 8, 10), dtype=np.float32)
    rgb[0, 0] = 1.0 * scale  # pure red
    image = decode_tensor(npy_bytes(rgb), max_pixels=10_000)
    assert image.size == (10, 8)
    assert image.getpixel((0, 0)) == (255, 0, 0)


def test_safetensors_image_key():
    chw = np.full((3, 6, 4), 0.5, dtype=np.float32)
    data = save_safetensors({"image": chw, "other": np.zeros(2, np.float32)})
    image = decode_tensor(data, max_pixels=10_000)
    assert image.size == (4, 6) and image.getpixel((1, 1)) == (128, 128, 128)


def test_fortran_order_npy():
    array = np.asfortranarray(np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3))
    assert np.array_equal(np.asarray(decode_tensor(npy_bytes(array), max_pixels=100)), array)


@pytest.mark.parametrize("data, code", [
    (npy_bytes(np.zeros((4, 4), np.uint8)), "not_an_image"),          # no channels
    (npy_bytes(np.zeros((4, 4, 3), np.int32)), "not_an_image"),       # dtype
    (npy_bytes(np.zeros((3, 4, 4), np.uint8)), "not_an_image"),       # uint8 must be HWC
    (npy_bytes(np.full((3, 4, 4), np.nan, np.float32)), "not_an_image"),
    (npy_bytes(np.zeros((4, 4, 3), np.uint8))[:-5], "corrupt_image"),  # truncated
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': broken", "corrupt_image"),
    (b"hello, not a tensor", "not_an_image"),
])
def test_bad_tensors(data, code):
    with pytest.raises(RequestError) as info:
        decode_tensor(data, max_pixels=10_000)
    assert info.value.code == code


def test_pickled_object_array_is_refused_without_unpickling():
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(RequestError) as info:
        decode_tensor(buf.getvalue(), max_pixels=10_000)
    assert info.value.code == "not_an_image" and "pickle" in info.value.message


def test_npy_header_bomb_is_rejected_before_allocation():
    # a header that promises 10^10 pixels but carries no data: must be a cheap 413
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000, 100000, 3), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    with pytest.raises(RequestError) as info:
        decode_tensor(data, max_pixels=50_000_000)
    assert (info.value.status, info.value.code) == (413, "too_large")


def test_safetensors_shape_mismatch_is_corrupt():
    data = bytearray(save_safetensors({"image": np.zeros((3, 4, 4), np.float32)}))
    with pytest.raises(RequestError) as info:
        decode_tensor(bytes(data[:-8]), max_pixels=10_000)
    assert info.value.code == "corrupt_image"


def test_array_to_image_clips_float_0_255():
    chw = np.full((3, 2, 2), 300.0, dtype=np.float64)
    assert array_to_image(chw).getpixel((0, 0)) == (255, 255, 255)


# ------------------------------------------------------------------ cache, settings, errors
def test_lru_cache_evicts_least_recently_used_and_counts():
    cache: StyleCache[str] = StyleCache(2)
    a, b, c = StyleCache.key("a", 512), StyleCache.key("b", 512), StyleCache.key("c", 512)
    cache.put(a, "A")
    cache.put(b, "B")
    assert cache.get(a) == "A"          # a is now the most recent
    cache.put(c, "C")                   # evicts b
    assert b not in cache and a in cache and c in cache
    assert cache.get(b) is None
    assert (cache.hits, cache.misses) == (1, 1)
    assert StyleCache.key("a", 256) not in cache  # the style size is part of the key


def test_zero_capacity_cache_stores_nothing():
    cache: StyleCache[int] = StyleCache(0)
    cache.put(("x", 1), 1)
    assert len(cache) == 0 and cache.get(("x", 1)) is None


def test_settings_from_yaml_and_validation():
    s = HandlerSettings.from_model_yaml({"maxWorkers": 2, "handler": {"max_size": 1024}})
    assert s.max_size == 1024 and s.sizes == [512, 768, 1024]
    assert s.torch_threads({"maxWorkers": 2}, cpu_count=8) == 4
    assert s.torch_threads({"maxWorkers": 4}, cpu_count=2) == 1
    assert HandlerSettings(threads=3).torch_threads({}, cpu_count=8) == 3
    with pytest.raises(ValueError, match="unknown key"):
        HandlerSettings.from_model_yaml({"handler": {"max_sise": 10}})
    with pytest.raises(ValueError):
        HandlerSettings(default_size=4096)
    assert HandlerSettings().default_style_size == 0  # from the weights
    with pytest.raises(ValueError, match="default_style_size must be 0"):
        HandlerSettings(default_style_size=32)  # below min_size
    with pytest.raises(ValueError, match="default_style_size must be 0"):
        HandlerSettings(max_size=1024, default_style_size=2048)


def test_unresolved_style_size_falls_back_to_the_recipe():
    # the handler resolves 0 from the weights; parsing alone falls back to 512
    req = parse_request({"content": b"a", "style": b"b"}, HandlerSettings())
    assert req.style_size == 512


def test_image_errors_keep_their_code_and_other_errors_become_500():
    class FakeImageError(ValueError):
        code, http_status = "corrupt_image", 400

    assert (from_exception(FakeImageError("x")).status, from_exception(FakeImageError("x")).code
            ) == (400, "corrupt_image")
    internal = from_exception(RuntimeError("secret detail"))
    assert internal.status == 500 and "secret" not in internal.message


# ------------------------------------------------------------------------ tsclient
def test_ts_client_reads_config_and_key_file(tmp_path, monkeypatch):
    monkeypatch.delenv("TS_KEY_FILE", raising=False)
    monkeypatch.delenv("TS_INFERENCE_URL", raising=False)
    cfg = tmp_path / "config.properties"
    cfg.write_text("# comment\ninference_address=http://0.0.0.0:9080\n"
                   "allowed_urls=file://.*/store/[^/]+\\\\.mar\n")
    endpoints = tsclient.Endpoints.from_config(cfg)
    assert endpoints.inference == "http://127.0.0.1:9080"
    assert endpoints.management == "http://127.0.0.1:8081"
    assert tsclient.read_properties(cfg)["allowed_urls"] == "file://.*/store/[^/]+\\.mar"
    keys_file = tmp_path / "key_file.json"
    assert tsclient.read_keys(keys_file) == tsclient.Keys()  # no file: auth off
    keys_file.write_text(json.dumps({"management": {"key": "M"}, "inference": {"key": "I"},
                                     "API": {"key": "A"}}))
    assert tsclient.read_keys(keys_file) == tsclient.Keys("I", "M", "A")
    monkeypatch.setenv("TS_KEY_FILE", str(keys_file))
    assert tsclient.read_keys().inference == "I"
    assert tsclient.auth_headers("I") == {"Authorization": "Bearer I"}


# ------------------------------------------------------------------ the handler, fake context
class RecordingMetrics:
    """Stands in for TorchServe's metrics cache; keeps what the handler reports."""

    def __init__(self):
        self.values: list[tuple[str, float, dict]] = []

    def add_metric(self, name, value, unit, idx=None, dimensions=None, metric_type=None):
        self.values.append((name, value, {d.name: d.value for d in dimensions or []}))

    def last(self, name: str) -> float:
        return [v for n, v, _ in self.values if n == name][-1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    make_tiny_weights(directory / "tiny.pt")
    (directory / "presets" / "previews").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(directory / "presets" / "previews" / "mosaic.jpg")
    return directory


@pytest.fixture
def served(model_dir):
    """(handler, context, metrics) wired like TorchServe's worker does it."""
    manifest = {"model": {"modelName": "msgnet", "serializedFile": "tiny.pt",
                          "modelVersion": "3.1", "handler": "msgnet_handler.py"}}
    config = {"batchSize": 4, "maxWorkers": 1, "handler": {"max_size": 1024, "cache_size": 4}}
    metrics = RecordingMetrics()
    context = Context("msgnet", str(model_dir), manifest, 4, None, "0.12.0", metrics=metrics,
                      model_yaml_config=config)
    handler = MsgnetHandler()
    handler.initialize(context)
    return handler, context, metrics


def test_the_worker_warms_up_at_load_unless_told_not_to(served, model_dir, monkeypatch):
    handler, _, _ = served
    assert handler.warmup_s is not None and handler.warmup_s > 0
    monkeypatch.setenv("MSGNET_WARMUP", "0")
    manifest = {"model": {"modelName": "msgnet", "serializedFile": "tiny.pt"}}
    cold = MsgnetHandler()
    cold.initialize(Context("msgnet", str(model_dir), manifest, 4, None, "0.12.0",
                            metrics=RecordingMetrics(), model_yaml_config={}))
    assert cold.warmup_s is None


def handle(served, batch: list[dict], headers: list[dict] | None = None):
    handler, context, _ = served
    context.request_processor = [RequestProcessor(h) for h in headers or [{}] * len(batch)]
    return handler.handle(batch, context)


def status(context, idx: int) -> int:
    return context.get_response_status(idx)[0]


def test_handler_batch_answers_each_request_alone(served):
    _, context, metrics = served
    style = png_bytes(24, 24, (10, 200, 30))
    out = handle(served, [
        {"content": bytearray(png_bytes(80, 40)), "style_id": bytearray(b"candy")},
        {"content": bytearray(b"no image here"), "style_id": bytearray(b"candy")},
        {"content": bytearray(png_bytes(30, 60)), "style": bytearray(style),
         "size": b"100", "format": b"png"},
        {"body": {"action": "presets"}},
    ])
    assert [status(context, i) for i in range(4)] == [200, 400, 200, 200]
    assert Image.open(io.BytesIO(out[0])).size == (512, 256)
    assert context.get_response_content_type(0) == "image/jpeg"
    assert json.loads(out[1])["code"] == "not_an_image"
    assert context.get_response_content_type(1) == "application/json"
    assert Image.open(io.BytesIO(out[2])).size == (50, 100)
    assert context.get_response_content_type(2) == "image/png"
    listing = json.loads(out[3])
    assert listing["max_size"] == 1024 and listing["model_version"] == "3.1"
    assert listing["presets"][1] == {"name": "mosaic", "preview": True}
    assert [context.get_response_headers(i)["X-Msgnet-Batch-Size"] for i in range(4)] == ["4"] * 4
    assert context.get_response_headers(2)["X-Msgnet-Style-Cache"] == "miss"
    assert metrics.last("StylizeBatchSize") == 4
    assert metrics.last("StyleCacheMisses") == 1 and metrics.last("StyleCacheHits") == 0
    assert metrics.last("StylizeMegapixels") == pytest.approx((512 * 256 + 50 * 100) / 1e6,
                                                             abs=1e-3)
    errors = [d for n, _, d in metrics.values if n == "StylizeRequestErrors"]
    assert errors == [{"ModelName": "msgnet", "Level": "Model", "Code": "not_an_image"}]


def test_handler_style_cache_hit_on_repeat(served):
    _, context, _ = served
    fields = {"content": bytearray(png_bytes(20, 20)), "style": bytearray(png_bytes(9, 9)),
              "size": b"64"}
    handle(served, [dict(fields)])
    handle(served, [dict(fields)])
    assert context.get_response_headers(0)["X-Msgnet-Style-Cache"] == "hit"


def test_handler_isolates_a_job_that_breaks_the_batched_forward(served, monkeypatch):
    handler, context, _ = served
    real_run = handler.stylizer.run

    def fragile_run(contents, targets, controls=None):
        if any(c.shape[-1] == 77 for c in contents):
            raise RuntimeError("boom")
        return real_run(contents, targets, controls)

    monkeypatch.setattr(handler.stylizer, "run", fragile_run)
    out = handle(served, [
        {"content": bytearray(png_bytes(64, 64)), "style_id": b"udnie", "size": b"64"},
        {"content": bytearray(png_bytes(77, 20)), "style_id": b"udnie", "size": b"77"},
        {"content": bytearray(png_bytes(64, 32)), "style_id": b"mosaic", "size": b"64"},
    ])
    assert [status(context, i) for i in range(3)] == [200, 500, 200]
    assert json.loads(out[1]) == {"code": "internal_error",
                                  "message": "stylization failed on the server"}


def test_handler_unknown_preset_and_preview(served):
    _, context, _ = served
    out = handle(served, [
        {"content": bytearray(png_bytes()), "style_id": b"starry"},
        {"body": {"action": "preview", "style_id": "mosaic"}},
        {"body": {"action": "preview", "style_id": "candy"}},
        {"body": {"action": "preview", "style_id": "../../etc/passwd"}},
    ])
    assert [status(context, i) for i in range(4)] == [404, 200, 404, 404]
    assert "candy, mosaic, udnie" in json.loads(out[0])["message"]
    assert context.get_response_content_type(1) == "image/jpeg"
    assert Image.open(io.BytesIO(out[1])).size == (8, 8)
    assert [json.loads(out[i])["code"] for i in (2, 3)] == ["no_preview", "unknown_preset"]


def test_handler_describe_returns_the_listing(served):
    out = handle(served, [{}], headers=[{"describe": "True"}])
    assert [p["name"] for p in json.loads(out[0])["presets"]] == ["candy", "mosaic", "udnie"]


# ------------------------------------------------------------------ crafted headers (issue 15)
def _npy_with_header(shape: str) -> bytes:
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': " + shape + ", }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 48


def _safetensors_with_header(header: str) -> bytes:
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 16


@pytest.mark.parametrize("data", [
    _npy_with_header("(True, 4, 3)"),                      # a boolean in the shape: was a 500
    _npy_with_header("(4, True, 3)"),
    _npy_with_header("(-4, 4, 3)"),
    _npy_with_header("(" * 500 + ")" * 500),                # echoed whole in the message
    _safetensors_with_header('{"image":{"dtype":"U8","shape":[Infinity,4,3],'
                             '"data_offsets":[0,16]}}'),
    _safetensors_with_header('{"a":' * 20000 + "1" + "}" * 20000),
])
def test_crafted_tensor_headers_are_a_400_with_a_short_message(data):
    with pytest.raises(RequestError) as info:
        decode_tensor(data, max_pixels=10_000)
    assert (info.value.status, info.value.code) == (400, "corrupt_image")
    assert len(info.value.message) <= 200 and "\n" not in info.value.message


def test_deeply_nested_json_body_is_a_400():
    # json.loads raises RecursionError (not ValueError) here: it escaped as a 500
    error = expect_error({"body": bytearray(b"[" * 100_000 + b"]" * 100_000)}, 400, "bad_option")
    assert "nested too deeply" in error.message


def test_messages_quote_at_most_a_bounded_part_of_what_the_client_sent():
    error = expect_error({"content": b"a", "style_id": b"c", "action": b"x" * 100_000},
                         400, "bad_option")
    assert len(error.message) < 200
    assert len(RequestError(400, "bad_option", "y" * 100_000).message) <= 300
    from handler.errors import unknown_preset
    assert len(unknown_preset("z" * 100_000, ["candy"]).message) < 120


# ------------------------------------------------------------------ batches in a pixel budget
def pixel_job(idx: int, w: int, h: int):
    from handler.batching import Job

    return Job(idx, torch.zeros(1, 3, h, w), torch.zeros(1, 4, 4), "png")


def test_split_by_pixels_keeps_each_pass_within_the_budget():
    from handler.batching import pixels, split_by_pixels

    mp = 1024 * 1024
    four_big = [pixel_job(i, 1024, 1024) for i in range(4)]
    assert [[j.idx for j in g] for g in split_by_pixels(four_big, mp)] == [[0], [1], [2], [3]]
    assert len(split_by_pixels(four_big, 0)) == 1  # 0: the whole batch in one run
    assert len(split_by_pixels(four_big, 4 * mp)) == 1
    four_small = [pixel_job(i, 512, 512) for i in range(4)]  # 4 x 0.26 MP = exactly 1 MP
    assert len(split_by_pixels(four_small, mp)) == 1
    mixed = [pixel_job(0, 512, 512), pixel_job(1, 2048, 1024), pixel_job(2, 768, 512),
             pixel_job(3, 512, 512), pixel_job(4, 512, 768), pixel_job(5, 768, 512)]
    groups = split_by_pixels(mixed, mp)
    assert sorted(j.idx for g in groups for j in g) == list(range(6))  # each exactly once
    for group in groups:  # within the budget, unless one job is larger by itself
        assert sum(pixels(j) for j in group) <= mp or len(group) == 1
    assert [j.idx for j in groups[0]] == [1]  # the 2 MP job alone (it runs tiled)
    # equal shapes stay together: 768x512 twice in one group, 512x768 apart from them
    together = next(g for g in groups if any(j.idx == 2 for j in g))
    assert 5 in [j.idx for j in together]
    assert split_by_pixels([], mp) == []


def test_handler_splits_a_batch_over_the_pixel_budget_and_answers_the_same(served, monkeypatch):
    """Four 96 px requests with a budget of two: two forward passes of two images each, and
    the same answers as one pass of four."""
    handler, context, _ = served
    real_run = handler.stylizer.run
    passes: list[int] = []

    def counting_run(contents, targets, controls=None):
        passes.append(sum(int(c.shape[-2]) * int(c.shape[-1]) for c in contents))
        return real_run(contents, targets, controls)

    monkeypatch.setattr(handler.stylizer, "run", counting_run)
    batch = [{"content": bytearray(png_bytes(96, 96, (40 * i, 90, 200 - 30 * i))),
              "style_id": b"candy" if i % 2 else b"mosaic", "size": b"96", "format": b"png"}
             for i in range(4)]
    answers = {}
    for budget in (0, 2 * 96 * 96):
        monkeypatch.setattr(handler, "settings", replace(handler.settings, batch_pixels=budget))
        passes.clear()
        out = handle(served, [dict(r) for r in batch])
        assert [status(context, i) for i in range(4)] == [200] * 4
        answers[budget] = [np.asarray(Image.open(io.BytesIO(o))) for o in out]
        assert passes == ([4 * 96 * 96] if budget == 0 else [2 * 96 * 96, 2 * 96 * 96])
    for one_pass, split in zip(answers[0], answers[2 * 96 * 96], strict=True):
        assert one_pass.shape == (96, 96, 3)
        np.testing.assert_array_equal(one_pass, split)

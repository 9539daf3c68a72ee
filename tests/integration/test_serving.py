"""The REST contract against a real TorchServe: inputs, outputs, errors, batching, metrics."""

from __future__ import annotations

import asyncio
import base64
import io
import time
import uuid

import aiohttp
import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save as save_safetensors

from handler.metrics import DEFAULT_BUCKETS_S

from .helpers import Reply, encode, form, noise_image, png_header_only, post

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session:
        yield session


def unique_style() -> bytes:
    """A style image no other test sent, so the first use is a cache miss."""
    return encode(noise_image(48, 40, seed=uuid.uuid4().int % 2**32), "JPEG")


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body[:300]
    assert reply.content_type == "application/json"
    body = reply.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]


async def test_token_authorization_is_enforced(torchserve, http):
    url = torchserve.predictions_url()
    data = {"action": "presets"}
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, torchserve.auth("management")):
        reply = await post(http, url, headers, json=data)
        # TorchServe 0.12 answers a missing or wrong token with 400 InvalidKeyException
        assert reply.status == 400 and reply.json()["type"] == "InvalidKeyException"
    async with http.get(f"{torchserve.management}/models", headers={}) as resp:
        assert resp.status == 400
    assert (await post(http, url, torchserve.auth(), json=data)).status == 200


async def test_presets_listing_by_json_and_form_field(torchserve, http):
    by_json = await post(http, torchserve.predictions_url(), torchserve.auth(),
                         json={"action": "presets"})
    by_form = await post(http, torchserve.predictions_url(), torchserve.auth(),
                         data=form(action="presets"))
    assert by_json.status == by_form.status == 200
    assert by_json.content_type == "application/json"
    listing = by_json.json()
    assert listing == by_form.json()
    assert listing["presets"] == [{"name": "candy", "preview": True},
                                  {"name": "mosaic", "preview": False},
                                  {"name": "udnie", "preview": False}]
    assert (listing["default_size"], listing["max_size"]) == (512, 2048)
    assert listing["sizes"] == [512, 768, 1024, 1536, 2048]
    assert listing["model_version"] == "1.0"
    assert listing["weights"]["layout"] == "ours" and listing["weights"]["ngf"] == 8


async def test_preset_preview(torchserve, http):
    url, auth = torchserve.predictions_url(), torchserve.auth()
    reply = await post(http, url, auth, json={"action": "preview", "style_id": "candy"})
    assert reply.status == 200 and reply.content_type == "image/jpeg"
    assert reply.image().size == (32, 32)
    assert_error(await post(http, url, auth, json={"action": "preview", "style_id": "mosaic"}),
                 404, "no_preview")
    assert_error(await post(http, url, auth, json={"action": "preview", "style_id": "nope"}),
                 404, "unknown_preset")


async def test_style_image_multipart_and_style_cache(torchserve, http):
    style = unique_style()
    content = encode(noise_image(320, 200, seed=1), "PNG")
    replies = []
    for _ in range(2):
        replies.append(await post(http, torchserve.predictions_url(), torchserve.auth(),
                                  data=form(content=content, style=style, size=256)))
    for reply in replies:
        assert reply.status == 200, reply.body[:300]
        assert reply.content_type == "image/jpeg"
        assert reply.image().size == (256, 160)  # longest side = size, content aspect kept
    assert [r.headers["X-Msgnet-Style-Cache"] for r in replies] == ["miss", "hit"]


async def test_preset_with_png_output_keeps_portrait_aspect(torchserve, http):
    content = encode(noise_image(150, 300, seed=2), "JPEG")
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       data=form(content=content, style_id="mosaic", size=200, format="png"))
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/png"
    assert reply.image().size == (100, 200)
    assert reply.headers["X-Msgnet-Style-Cache"] == "preset"


@pytest.mark.parametrize("fmt", ["AVIF", "HEIC"])
async def test_avif_and_iphone_heic_photos_stylize(torchserve, http, fmt):
    """Issue 41: what phones send. AVIF through Pillow, HEIC through pillow-heif, both in the
    worker's environment; made here with Pillow / pillow_heif."""
    img = noise_image(120, 80, seed=7)
    if fmt == "AVIF":
        from PIL import features

        if not features.check("avif"):
            pytest.skip("this Pillow has no AVIF codec")
        content = encode(img, "AVIF")
    else:
        pillow_heif = pytest.importorskip("pillow_heif")
        buf = io.BytesIO()
        try:
            pillow_heif.from_pillow(img).save(buf, format="HEIF")
        except Exception as exc:
            pytest.skip(f"pillow_heif cannot encode HEIC here: {exc}")
        content = buf.getvalue()
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       data=form(content=content, style_id="candy", size=96))
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/jpeg" and reply.image().size == (96, 64)


async def test_tensor_inputs_npy_and_safetensors(torchserve, http):
    rng = np.random.default_rng(3)
    content_hwc = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    buf = io.BytesIO()
    np.save(buf, content_hwc, allow_pickle=False)
    style_chw = rng.random((3, 40, 40), dtype=np.float32)
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       data=form(content_tensor=buf.getvalue(),
                                 style_tensor=save_safetensors({"image": style_chw}), size=120))
    assert reply.status == 200, reply.body[:300]
    assert reply.image().size == (120, 90)

    nchw = rng.random((1, 3, 64, 48), dtype=np.float32) * 255
    buf = io.BytesIO()
    np.save(buf, nchw, allow_pickle=False)
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       data=form(content_tensor=buf.getvalue(), style_id="udnie", size=64))
    assert reply.status == 200, reply.body[:300]
    assert reply.image().size == (48, 64)


async def test_json_body_with_base64_images(torchserve, http):
    body = {"content": base64.b64encode(encode(noise_image(100, 50, seed=4))).decode(),
            "style": base64.b64encode(unique_style()).decode(),
            "size": 128, "style_size": 64, "format": "png"}
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(), json=body)
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/png" and reply.image().size == (128, 64)


async def test_options_as_query_parameters_on_invocations(torchserve, http):
    # TorchServe forwards the query string only on /invocations (and legacy /<model>/predict)
    url = f"{torchserve.inference}/invocations?model_name=msgnet&size=96&format=png&style_id=candy"
    reply = await post(http, url, torchserve.auth(),
                       data=form(content=encode(noise_image(60, 120, seed=5))))
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/png" and reply.image().size == (48, 96)


@pytest.mark.parametrize("fields, status, code", [
    ({"content": b"just some text, no image", "style_id": "candy"}, 400, "not_an_image"),
    ({"content": encode(noise_image(64, 64))[:300], "style_id": "candy"}, 400, "corrupt_image"),
    ({"content": encode(noise_image(64, 64)), "style": b"GIF89a broken"}, 400, "corrupt_image"),
    ({"content": encode(noise_image(64, 64)), "style_id": "no-such-style"}, 404,
     "unknown_preset"),
    ({"content": png_header_only(30000, 30000), "style_id": "candy"}, 413, "too_large"),
    ({"style_id": "candy"}, 422, "missing_field"),
    ({"content": encode(noise_image(64, 64))}, 422, "missing_field"),
    ({"content": encode(noise_image(64, 64)), "style_id": "candy", "size": 4096}, 400,
     "bad_option"),
    ({"content": encode(noise_image(64, 64)), "style_id": "candy", "format": "gif"}, 400,
     "bad_option"),
], ids=["not-an-image", "corrupt-content", "corrupt-style", "unknown-preset", "pixel-bomb",
        "missing-content", "missing-style", "size-too-big", "bad-format"])
async def test_error_statuses(torchserve, http, fields, status, code):
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(), data=form(**fields))
    assert_error(reply, status, code)


async def test_20_mb_upload_accepted_and_over_the_cap_rejected(torchserve, http):
    big = encode(noise_image(2600, 2600, seed=6), "PNG", compress_level=1)
    assert 19 * MIB < len(big) < 20 * MIB  # just under the 20 MiB cap
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       data=form(content=big, style_id="candy", size=128))
    assert reply.status == 200, reply.body[:300]
    assert reply.image().size == (128, 128)

    # the same as base64 JSON: a ~25 MB body must pass TorchServe's request size limit
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       json={"content": base64.b64encode(big).decode(), "style_id": "candy",
                             "size": 64})
    assert reply.status == 200, reply.body[:300]

    too_big = big + b"\0" * (21 * MIB - len(big))
    reply = await post(http, torchserve.predictions_url(), torchserve.auth(),
                       data=form(content=too_big, style_id="candy"))
    assert_error(reply, 413, "too_large")


async def test_mixed_batch_with_one_bad_request(torchserve, http):
    url, auth = torchserve.predictions_url(), torchserve.auth()
    requests = [
        form(content=encode(noise_image(200, 100, seed=7)), style_id="candy", size=128),
        form(content=encode(noise_image(100, 200, seed=8)), style=unique_style(), size=96,
             format="png"),
        form(content=encode(noise_image(150, 150, seed=9), "JPEG"), style_id="mosaic", size=160),
        form(content=b"%PDF-1.4 not an image", style_id="candy"),
    ]
    replies = await asyncio.gather(*(post(http, url, auth, data=r) for r in requests))
    expected = [((128, 64), "image/jpeg"), ((48, 96), "image/png"), ((160, 160), "image/jpeg")]
    for reply, (size, content_type) in zip(replies[:3], expected, strict=True):
        assert reply.status == 200, reply.body[:300]
        assert reply.content_type == content_type and reply.image().size == size
    assert_error(replies[3], 400, "not_an_image")
    # the four requests really shared server-side batches (batchSize 4, maxBatchDelay 250 ms)
    batch_sizes = [int(r.headers["X-Msgnet-Batch-Size"]) for r in replies]
    assert max(batch_sizes) >= 2, batch_sizes


async def test_custom_metrics_reach_prometheus(torchserve, http):
    url, auth = torchserve.predictions_url(), torchserve.auth()
    reply = await post(http, url, auth, data=form(content=encode(noise_image(64, 64, seed=10)),
                                                  style=unique_style(), size=64))
    assert reply.status == 200
    assert_error(await post(http, url, auth, data=form(content=b"text", style_id="candy")),
                 400, "not_an_image")
    # StylizeInferenceTime is a histogram (issue 41): its series are _bucket, _count and _sum
    wanted = ["StyleCacheHits", "StyleCacheMisses", "StylizeInferenceTime_bucket",
              "StylizeInferenceTime_count", "StylizeMegapixels", "StylizeBatchSize",
              "StylizeRequestErrors"]
    deadline, text = time.monotonic() + 20, ""
    while time.monotonic() < deadline:
        async with http.get(f"{torchserve.metrics}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        if all(f'\n{name}{{' in text for name in wanted):
            break
        await asyncio.sleep(0.5)
    missing = [name for name in wanted if f"\n{name}{{" not in text]
    assert not missing, f"metrics missing from Prometheus output: {missing}"
    errors = [line for line in text.splitlines() if line.startswith("StylizeRequestErrors{")]
    assert any('Code="not_an_image"' in line and 'ModelName="msgnet"' in line
               for line in errors), errors
    assert "# TYPE StylizeInferenceTime histogram" in text
    # every batch is kept (a gauge kept the last one): the count covers the 200 above, and the
    # seconds land in finite buckets, so histogram_quantile gives a p50/p95
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in text.splitlines()
               if line.startswith("StylizeInferenceTime_") and 'ModelName="msgnet"' in line}
    count = next(v for k, v in samples.items() if k.startswith("StylizeInferenceTime_count{"))
    assert count >= 1, samples
    top_le = f'le="{DEFAULT_BUCKETS_S[-1]}"'
    top = next(v for k, v in samples.items()
               if k.startswith("StylizeInferenceTime_bucket{") and top_le in k)
    # most batches of tiny weights take well under 10 s, so the median is finite (in ms, as the
    # gauge was, every batch would overflow the top bucket); a few big uploads of the shared
    # server may pass 10 s on a loaded machine (measured: 40 of 41 under 10 s beside a fit)
    assert top >= count / 2, samples


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


async def test_style_controls_strength_mix_and_sheet(torchserve, http):
    """Issue 13's controls through the real server: strength 0 gives the photo back, a
    two-preset mix is its own style, and action=sheet labels the photo in every preset."""
    y, x = np.mgrid[0:96, 0:128]
    photo = np.stack([x * 2, y * 2, (x + y)], axis=-1).clip(0, 255).astype(np.uint8)
    content = encode(Image.fromarray(photo))
    url, auth = torchserve.predictions_url(), torchserve.auth()

    async def stylize(**fields) -> np.ndarray:
        reply = await post(http, url, auth, data=form(content=content, size=128, format="png",
                                                      **fields))
        assert reply.status == 200, reply.body[:300]
        assert reply.content_type == "image/png" and reply.image().size == (128, 96)
        return np.asarray(reply.image().convert("RGB"))

    assert _psnr(await stylize(style_id="candy", strength=0), photo) > 40
    mixed = await stylize(style_id="candy:0.7,udnie:0.3")
    candy, udnie = await stylize(style_id="candy"), await stylize(style_id="udnie")
    assert not np.array_equal(mixed, candy) and not np.array_equal(mixed, udnie)
    bad = await post(http, url, auth, data=form(content=content, style_id="candy:-1,udnie:1"))
    assert_error(bad, 400, "bad_option")

    reply = await post(http, url, auth, data=form(content=content, action="sheet", size=64))
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "image/jpeg"
    labels = reply.headers["X-Msgnet-Sheet"].split(",")
    assert labels[0] == "original" and sorted(labels[1:]) == ["candy", "mosaic", "udnie"]
    width, height = reply.image().size
    assert width > 64 and height > 48  # more than one cell

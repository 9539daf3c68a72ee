"""The handler's animated path (issue 14) with a fake TorchServe context: a GIF or video as
``content`` comes back encoded, beside photos of the same batch; every clip error is a 4xx
JSON naming ``content``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from handler_harness import handle, serve
from PIL import Image
from weights_factory import make_tiny_weights

from fakes import clips as cs
from handler.settings import HandlerSettings
from msgnet.animation.decode import open_clip
from msgnet.animation.stylize import ClipCancelled

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    make_tiny_weights(directory / "tiny.pt")
    config = {"handler": {"clip_max_seconds": 2, "clip_max_frames": 12, "clip_size": 48,
                          "min_size": 32, "clip_max_size": 64, "warmup": 0}}
    return serve(directory, "tiny.pt", config)


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 140, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_gif_video_and_photo_in_one_batch(served) -> None:
    gif = cs.animation("GIF", 4, 64, 48, durations=[100, 50, 100, 150])
    mp4 = cs.video(6, fps=6, width=96, height=64, audio="aac")
    out, context = handle(served, [
        {"content": bytearray(gif), "style_id": b"candy", "strength": b"0.5"},
        {"content": bytearray(mp4), "style_id": b"mosaic", "size": b"64"},
        {"content": bytearray(_png(40, 20)), "style_id": b"candy", "size": b"80"},
    ])
    assert [context.get_response_status(i)[0] for i in range(3)] == [200, 200, 200]
    assert context.get_response_content_type(0) == "image/gif"
    assert open_clip(out[0]).info.durations_ms == (100, 50, 100, 150)
    assert open_clip(out[0]).info.width == 48  # the clip default size, not the photo's 512
    assert context.get_response_content_type(1) == "video/mp4"
    video = open_clip(out[1]).info
    assert (video.width, video.height, video.frames, video.audio) == (64, 42, 6, "aac")
    header = context.get_response_headers(1)["X-Msgnet-Clip"]
    assert header.startswith("frames=6;fps=6.000;seconds=1.000;size=64x42;audio=kept (aac)")
    assert Image.open(io.BytesIO(out[2])).size == (80, 40)


@pytest.mark.parametrize(("content", "fields", "status", "code", "words"), [
    (cs.video(30, fps=10, width=32, height=32), {}, 413, "clip_too_long", "limit is 2 s"),
    (cs.animation("GIF", 14, 16, 16), {}, 413, "clip_too_long", "limit is 12"),
    (cs.video(6, fps=10, width=32, height=32)[:900], {}, 400, "corrupt_clip", "damaged"),
    (b"\x1aE\xdf\xa3" + b"\x00" * 200, {}, 400, "corrupt_clip", "damaged"),
    (cs.animation("GIF", 3, 16, 16), {"size": b"100"}, 400, "bad_option", "at most 64 px"),
])
def test_clip_errors_are_4xx_json_naming_content(served, content: bytes, fields: dict,
                                                 status: int, code: str, words: str) -> None:
    out, context = handle(served, [{"content": bytearray(content), "style_id": b"candy",
                                    **fields}])
    body = json.loads(out[0])
    assert context.get_response_status(0)[0] == status, body
    assert body["code"] == code and words in body["message"]
    assert body["field"] == ("size" if code == "bad_option" else "content")


def test_unsupported_codec_is_415(served, monkeypatch) -> None:
    import av

    def refuse(name, mode="r"):
        raise av.codec.codec.UnknownCodecError(name)

    monkeypatch.setattr(av.codec, "Codec", refuse)
    out, context = handle(served, [{"content": bytearray(cs.video(3, 10, 16, 16)),
                                    "style_id": b"candy"}])
    assert context.get_response_status(0)[0] == 415
    assert json.loads(out[0])["code"] == "unsupported_codec"
    assert "'h264' is not supported" in json.loads(out[0])["message"]


def test_the_presets_answer_reports_the_clip_limits(served) -> None:
    out, _ = handle(served, [{"body": {"action": "presets"}}])
    clips = json.loads(out[0])["clips"]
    assert (clips["max_seconds"], clips["max_frames"], clips["size"]) == (2, 12, 48)
    assert clips["reference"] == "first" and "up to 2 s" in clips["summary"]


def test_clip_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="clip_reference must be one of"):
        HandlerSettings(clip_reference="median")
    with pytest.raises(ValueError, match="clip size 800 is above clip max_size 720"):
        HandlerSettings(clip_size=800)
    assert HandlerSettings.from_model_yaml({}, {"MSGNET_CLIP_REFERENCE": "running"}
                                           ).clip_reference == "running"


def test_model_config_sets_the_clip_defaults() -> None:
    import yaml

    cfg = yaml.safe_load((Path(__file__).parents[1] / "handler" / "model-config.yaml")
                         .read_text())
    settings = HandlerSettings.from_model_yaml(cfg, {})
    assert (settings.clip_max_seconds, settings.clip_size) == (15, 480)


def test_progress_lines_then_an_in_band_answer(served, monkeypatch) -> None:
    """With progress=true a lone clip streams {"done", "total"} lines; once one has gone
    (the HTTP status with it) even an error is answered in-band as the last line."""
    import handler.clips as clips

    sent: list[str] = []
    monkeypatch.setattr(clips, "PROGRESS_MIN_S", 0.0)
    monkeypatch.setattr(served[0], "progress_send", lambda ret, *args: sent.extend(ret))
    gif = cs.animation("GIF", 10, 32, 24)
    out, context = handle(served, [{"content": bytearray(gif), "style_id": b"candy",
                                    "progress": b"true"}])
    assert [json.loads(line) for line in sent] == [{"done": 8, "total": 10},
                                                   {"done": 10, "total": 10}]
    final = json.loads(out[0])
    assert final["status"] == 200 and final["content_type"] == "image/gif"
    assert context.get_response_content_type(0) == "application/x-ndjson"
    error = clips.ProgressStream(context, 0, send=lambda *a: None).final(
        ClipCancelled("Stopped after 8 of 10 frames."))
    assert json.loads(error)["code"] == "cancelled"


def test_wants_progress_reads_form_and_json() -> None:
    from handler.fields import wants_progress

    assert wants_progress({"progress": b"true"}) and wants_progress({"body": {"progress": 1}})
    assert not wants_progress({}) and not wants_progress({"progress": "no"})

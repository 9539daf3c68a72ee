"""Cancelling a clip on the server (handler/cancel.py): the token's validation, the cancel
folder the workers share, and the handler driven by a fake TorchServe context: a cancel request
records the token, and a clip carrying it stops before its next chunk with 409 ``cancelled``."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from pathlib import Path

import pytest
from handler_harness import handle, serve
from PIL import Image
from weights_factory import make_tiny_weights

from fakes import clips as cs
from handler import cancel
from handler.actions import CancelRequest
from handler.cancel import CancelBox, check_token
from handler.errors import RequestError
from handler.parsing import StylizeRequest, parse_request
from handler.settings import HandlerSettings

pytestmark = pytest.mark.usefixtures("torch_single_thread")
TOKEN = "aB3_-" + "x" * 17  # 22 characters, as secrets.token_urlsafe(16) makes them
SETTINGS = HandlerSettings()


# --- the token ------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "token"), [
    (TOKEN, TOKEN), ("a" * 16, "a" * 16), ("Z9_-" * 16, "Z9_-" * 16), (TOKEN.encode(), TOKEN),
    (bytearray(TOKEN.encode()), TOKEN), (f"  {TOKEN}\n", TOKEN)])
def test_good_tokens(raw, token: str) -> None:
    assert check_token(raw, "cancel_token") == token


@pytest.mark.parametrize("raw", ["a" * 15, "a" * 65, "../../etc/passwd_xxxxxxx",
                                 "abc/defghijklmnopq", "abcdefghijklmnop.", "abc defghijklmnopq",
                                 "abcdefghijklmnopé", "", 1234567890123456789, None, ["a" * 20],
                                 "a" * 16 + "\x00"])
def test_bad_tokens_are_a_400_naming_the_field(raw) -> None:
    with pytest.raises(RequestError) as info:
        check_token(raw, "cancel_token")
    err = info.value
    assert (err.status, err.code, err.field) == (400, "bad_option", "cancel_token")
    assert err.message.startswith("cancel_token must be 16 to 64 characters of A-Z")


def test_parse_request_reads_cancel_and_cancel_token_from_form_and_json() -> None:
    assert parse_request({"cancel": TOKEN.encode()}, SETTINGS) == CancelRequest(TOKEN)
    assert parse_request({"body": {"cancel": TOKEN}}, SETTINGS) == CancelRequest(TOKEN)
    assert parse_request({"body": bytearray(json.dumps({"cancel": TOKEN}).encode())},
                         SETTINGS) == CancelRequest(TOKEN)
    form = parse_request({"content": b"x", "style_id": b"candy",
                          "cancel_token": TOKEN.encode()}, SETTINGS)
    assert isinstance(form, StylizeRequest) and form.cancel_token == TOKEN
    body = parse_request({"body": {"content": "eA==", "style_id": "candy",
                                   "cancel_token": TOKEN}}, SETTINGS)
    assert body.cancel_token == TOKEN
    assert parse_request({"content": b"x", "style_id": b"candy"}, SETTINGS).cancel_token is None


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"content": b"x", "style_id": b"candy", "cancel_token": b"short"}, "cancel_token",
     "cancel_token must be 16 to 64"),
    ({"body": {"content": "eA==", "style_id": "candy", "cancel_token": "../" * 8}},
     "cancel_token", "cancel_token must be 16 to 64"),
    ({"cancel": b"no/slashes/please/x"}, "cancel", "cancel must be 16 to 64"),
    ({"cancel": TOKEN.encode(), "content": b"x"}, "cancel", "carries only the cancel token"),
])
def test_bad_cancel_fields_are_400s(fields, field: str, words: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(fields, SETTINGS)
    assert (info.value.status, info.value.field) == (400, field)
    assert words in info.value.message


# --- the folder -----------------------------------------------------------------------------

def test_the_folder_is_private_and_token_files_come_and_go(tmp_path) -> None:
    box = CancelBox(tmp_path / "cancel")
    stop = box.should_stop(TOKEN)
    assert not stop() and not box.requested(TOKEN)
    box.request(TOKEN)
    assert stat.S_IMODE(os.stat(box.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(box.directory / TOKEN).st_mode) == 0o600
    assert stop() and box.requested(TOKEN)
    assert CancelBox(tmp_path / "cancel").requested(TOKEN)  # another worker sees it
    box.request(TOKEN)  # twice: still one file
    assert os.listdir(box.directory) == [TOKEN]
    box.clear(TOKEN)
    box.clear(TOKEN)  # already gone: fine
    assert not stop() and os.listdir(box.directory) == []


def test_a_wider_folder_is_narrowed_and_a_symlink_refused(tmp_path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    CancelBox(loose).ensure()
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o700
    (tmp_path / "link").symlink_to(loose)
    with pytest.raises(OSError, match="not a folder"):
        CancelBox(tmp_path / "link").ensure()
    with pytest.raises(OSError, match="not a folder"):
        CancelBox(tmp_path / "link").request(TOKEN)
    assert os.listdir(loose) == []


def test_a_token_file_name_cannot_escape_the_folder(tmp_path) -> None:
    box = CancelBox(tmp_path / "cancel")
    with pytest.raises(RequestError):
        box.request("../../../../tmp/evil_file_x")
    with pytest.raises(RequestError):
        box.should_stop("../" * 6)
    assert not (tmp_path / "evil_file_x").exists()


def test_stale_token_files_are_swept(tmp_path) -> None:
    box = CancelBox(tmp_path / "cancel")
    old, fresh = "o" * 20, "f" * 20
    box.request(old)
    box.request(fresh)
    (box.directory / "notes.txt").write_text("not a token: left alone")
    hour_ago = time.time() - cancel.STALE_S - 5
    os.utime(box.directory / old, (hour_ago, hour_ago))
    os.utime(box.directory / "notes.txt", (hour_ago, hour_ago))
    assert box.sweep() == 1
    assert sorted(os.listdir(box.directory)) == sorted([fresh, "notes.txt"])
    os.utime(box.directory / fresh, (hour_ago, hour_ago))
    box.request(TOKEN)  # a cancel sweeps too
    assert sorted(os.listdir(box.directory)) == sorted([TOKEN, "notes.txt"])
    assert CancelBox(tmp_path / "missing").sweep() == 0


def test_the_default_folder_is_under_the_temp_dir(tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert CancelBox().directory == tmp_path / "msgnet-cancel"
    assert CancelBox("").directory == tmp_path / "msgnet-cancel"


def test_the_cancel_dir_setting() -> None:
    import yaml

    assert HandlerSettings().cancel_dir == ""
    assert HandlerSettings.from_model_yaml({}, {"MSGNET_CANCEL_DIR": "/srv/cancel"}
                                           ).cancel_dir == "/srv/cancel"
    with pytest.raises(ValueError, match="cancel_dir must be an absolute path"):
        HandlerSettings(cancel_dir="relative/dir")
    cfg = yaml.safe_load((Path(__file__).parents[1] / "handler" / "model-config.yaml")
                         .read_text())
    assert cfg["handler"]["cancel_dir"] == ""
    assert HandlerSettings.from_model_yaml(cfg, {}).cancel_dir == ""


# --- the handler ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cancel_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared") / "msgnet-cancel"


@pytest.fixture(scope="module")
def served(tmp_path_factory, cancel_dir):
    directory = tmp_path_factory.mktemp("model")
    make_tiny_weights(directory / "tiny.pt")
    config = {"handler": {"clip_max_seconds": 10, "clip_max_frames": 64, "clip_size": 32,
                          "min_size": 32, "clip_max_size": 64, "warmup": 0,
                          "cancel_dir": str(cancel_dir)}}
    return serve(directory, "tiny.pt", config)


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 140, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_a_cancel_request_is_answered_beside_a_photo(served, cancel_dir) -> None:
    out, context = handle(served, [{"cancel": TOKEN.encode()},
                                   {"content": bytearray(_png(40, 20)), "style_id": b"candy",
                                    "size": b"64"},
                                   {"body": {"cancel": "bad/token"}}])
    assert context.get_response_status(0)[0] == 200
    assert json.loads(out[0]) == {"cancelled": TOKEN}
    assert context.get_response_content_type(0) == "application/json"
    assert (cancel_dir / TOKEN).is_file()
    assert Image.open(io.BytesIO(out[1])).size == (64, 32)
    assert context.get_response_status(2)[0] == 400
    assert json.loads(out[2])["field"] == "cancel"
    (cancel_dir / TOKEN).unlink()


def test_a_cancel_that_came_first_stops_the_clip_before_its_first_chunk(served,
                                                                        cancel_dir) -> None:
    token = "early-cancel-token-0001"
    handle(served, [{"body": {"cancel": token}}])
    out, context = handle(served, [{"content": bytearray(cs.animation("GIF", 12, 32, 24)),
                                    "style_id": b"candy", "cancel_token": token.encode()}])
    body = json.loads(out[0])
    assert context.get_response_status(0)[0] == 409
    assert body["code"] == "cancelled" and "after 0 of 12 frames" in body["message"]
    assert not (cancel_dir / token).exists()  # the clip worker removed it


def test_a_clip_cancelled_mid_stream_stops_before_its_next_chunk(served, cancel_dir,
                                                                 monkeypatch) -> None:
    """The cancel arrives (from another worker: a second CancelBox on the same folder) once
    the first progress line has gone; the clip stops after that chunk of 8 frames and the
    final in-band line says ``cancelled``."""
    import handler.clips as clips

    token = "mid-stream-cancel-0002"
    sent: list[dict] = []

    def send(lines, *args) -> None:
        sent.extend(json.loads(line) for line in lines)
        CancelBox(cancel_dir).request(token)

    monkeypatch.setattr(clips, "PROGRESS_MIN_S", 0.0)
    monkeypatch.setattr(served[0], "progress_send", send)
    gif = cs.animation("GIF", 24, 32, 24)
    out, context = handle(served, [{"content": bytearray(gif), "style_id": b"candy",
                                    "progress": b"true", "cancel_token": token.encode()}])
    assert sent == [{"done": 8, "total": 24}]
    final = json.loads(out[0])
    assert (final["status"], final["code"]) == (409, "cancelled")
    assert "after 8 of 24 frames" in final["message"] and "field" not in final
    assert context.get_response_content_type(0) == "application/x-ndjson"
    assert not (cancel_dir / token).exists()


def test_a_clip_with_a_token_nobody_cancels_comes_back_whole(served, cancel_dir) -> None:
    out, context = handle(served, [{"content": bytearray(cs.animation("GIF", 6, 32, 24)),
                                    "style_id": b"candy", "cancel_token": b"k" * 30}])
    assert context.get_response_status(0)[0] == 200 and out[0][:6] == b"GIF89a"
    # (the GIF encoder may merge identical frames of the tiny weights: the header counts)
    assert context.get_response_headers(0)["X-Msgnet-Clip"].startswith("frames=6;")
    assert not (cancel_dir / ("k" * 30)).exists()


def test_a_clip_with_a_bad_token_is_a_400(served) -> None:
    out, context = handle(served, [{"content": bytearray(cs.animation("GIF", 3, 16, 16)),
                                    "style_id": b"candy", "cancel_token": b"x"}])
    assert context.get_response_status(0)[0] == 400
    assert json.loads(out[0])["field"] == "cancel_token"


def test_an_unusable_folder_answers_the_cancel_with_a_500(served, tmp_path,
                                                          monkeypatch) -> None:
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    monkeypatch.setattr(served[0], "cancels", CancelBox(tmp_path / "link"))
    out, context = handle(served, [{"cancel": TOKEN.encode()}])
    assert context.get_response_status(0)[0] == 500
    assert json.loads(out[0])["code"] == "internal_error"
    assert os.listdir(target) == []


def test_the_presets_answer_says_clips_can_be_cancelled(served) -> None:
    out, _ = handle(served, [{"body": {"action": "presets"}}])
    assert json.loads(out[0])["clips"]["cancel"] is True

"""Learned styles through the handler (issue 39), driven by a fake TorchServe context: the photo
model serves a learned style by name (per owner, never stale after a re-learn or a delete, a
clear 4xx for other weights or a damaged file), and the learn model (``handler.learn: 1``)
checks everything before the fit, streams NDJSON progress, saves, and stops on a cancel."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from handler_harness import handle, serve
from PIL import Image
from weights_factory import make_tiny_weights, save_tiny_vgg

from handler.learning import LearnRequest
from handler.parsing import parse_request
from handler.settings import HandlerSettings
from msgnet.learning.style_store import StyleStore

pytestmark = pytest.mark.usefixtures("torch_single_thread")
TOKEN = "learn_cancel_" + "x" * 10


def _png(img: Image.Image) -> bytearray:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return bytearray(buf.getvalue())


@pytest.fixture(scope="module")
def kit(tmp_path_factory, rng_image) -> dict:
    root = tmp_path_factory.mktemp("learn-handler")
    make_tiny_weights(root / "tiny.pt")
    photos = root / "photos"
    photos.mkdir()
    for i in range(4):
        rng_image(72 + 4 * i, 60, seed=30 + i).save(photos / f"p{i}.jpg", quality=95)
    save_tiny_vgg(root / "vgg.pt")
    return {"root": root, "photos": photos, "vgg": root / "vgg.pt",
            "style": _png(rng_image(48, 40, seed=9))}


def _config(store: Path, learn: bool = False, **extra) -> dict:
    handler = {"warmup": 0, "min_size": 32, "style_store": str(store), **extra}
    return {"handler": handler | ({"learn": 1} if learn else {})}


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def photo_model(kit, store):
    return serve(kit["root"], "tiny.pt", _config(store))


@pytest.fixture
def learn_model(kit, store):
    return serve(kit["root"], "tiny.pt", _config(store, learn=True, vgg=str(kit["vgg"]),
                                                 learn_photos=str(kit["photos"])), batch_size=1)


def _stylize(model, name: str, **fields):
    photo = _png(Image.new("RGB", (40, 32), (90, 160, 40)))
    out, context = handle(model, [{"content": photo, "style_id": name.encode(),
                                   "size": b"40", **fields}])
    return out[0], context


def _save(model, store: Path, name: str, target: torch.Tensor, owner: str = "local",
          fingerprint: str | None = None) -> None:
    fp = fingerprint or model[0].stylizer.fingerprint
    StyleStore(store).save(name, target, fp, owner=owner, overwrite=True)


def _random_target(model, seed: int) -> torch.Tensor:
    c = model[0].stylizer.net.channels
    a = torch.randn(1, c, c, generator=torch.Generator().manual_seed(seed))
    return a @ a.transpose(1, 2) / c


# ---------------------------------------------------------------- the photo model
def test_a_learned_style_is_served_by_name_to_its_owner_only(photo_model, store) -> None:
    _save(photo_model, store, "ink", _random_target(photo_model, 1), owner="u1")
    body, context = _stylize(photo_model, "ink", owner=b"u1")
    assert context.get_response_status(0)[0] == 200, body
    assert context.get_response_headers(0)["X-Msgnet-Style-Cache"] == "miss"
    assert Image.open(io.BytesIO(body)).size == (40, 32)
    _, context = _stylize(photo_model, "ink", owner=b"u1")
    assert context.get_response_headers(0)["X-Msgnet-Style-Cache"] == "hit"
    # another owner (and the default one) does not see it; the 404 lists what they have
    body, context = _stylize(photo_model, "ink", owner=b"u2")
    assert context.get_response_status(0)[0] == 404
    answer = json.loads(body)
    assert answer["code"] == "unknown_preset" and "candy" in answer["message"]
    assert answer["message"].endswith("available: candy, mosaic, udnie")
    body, _ = _stylize(photo_model, "nope", owner=b"u1")
    # the owner's own styles are listed
    assert json.loads(body)["message"].endswith("available: candy, mosaic, udnie, ink")


def test_a_relearned_or_deleted_style_is_never_served_stale(photo_model, store) -> None:
    _save(photo_model, store, "ink", _random_target(photo_model, 1))
    first, _ = _stylize(photo_model, "ink", format=b"png")
    path = StyleStore(store).path("ink")
    mtime = path.stat().st_mtime_ns
    _save(photo_model, store, "ink", _random_target(photo_model, 2) * 3)
    import os
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))  # coarse clocks: a visibly newer file
    second, context = _stylize(photo_model, "ink", format=b"png")
    assert context.get_response_headers(0)["X-Msgnet-Style-Cache"] == "miss"
    assert second != first
    StyleStore(store).delete("ink")
    body, context = _stylize(photo_model, "ink")
    assert context.get_response_status(0)[0] == 404 and json.loads(body)["code"] == \
        "unknown_preset"


def test_other_weights_and_a_damaged_file_are_clear_4xx(photo_model, store) -> None:
    _save(photo_model, store, "old", _random_target(photo_model, 1), fingerprint="0" * 16)
    body, context = _stylize(photo_model, "old")
    answer = json.loads(body)
    assert context.get_response_status(0)[0] == 409
    assert answer["code"] == "weights_mismatch" and "learn it again" in answer["message"]
    StyleStore(store).path("bad").write_bytes(b"not a torch file")
    body, context = _stylize(photo_model, "bad")
    answer = json.loads(body)
    assert context.get_response_status(0)[0] == 422 and answer["code"] == "unreadable_style"
    assert str(store) not in answer["message"]  # no server paths in answers


@pytest.mark.parametrize("owner", [b"../x", b"a/b", b"..", b" ", b"x" * 70])
def test_a_bad_owner_is_a_400(photo_model, owner: bytes) -> None:
    body, context = _stylize(photo_model, "candy", owner=owner)
    if owner.strip() == b"":
        assert context.get_response_status(0)[0] == 200  # blank: the default owner
        return
    assert context.get_response_status(0)[0] == 400
    assert json.loads(body)["field"] == "owner"


def test_the_presets_answer_lists_the_owners_learned_styles(photo_model, store) -> None:
    _save(photo_model, store, "ink", _random_target(photo_model, 1), owner="u1")
    _save(photo_model, store, "old", _random_target(photo_model, 1), owner="u1",
          fingerprint="0" * 16)
    out, _ = handle(photo_model, [{"body": {"action": "presets", "owner": "u1"}}])
    learned = json.loads(out[0])["learned"]
    assert (learned["owner"], learned["styles"], learned["other_weights"]) == (
        "u1", ["ink"], ["old"])
    out, _ = handle(photo_model, [{"body": {"action": "presets"}}])
    assert json.loads(out[0])["learned"]["styles"] == []


def test_the_photo_model_refuses_to_learn(photo_model, kit) -> None:
    out, context = handle(photo_model, [{"action": b"learn", "name": b"ink",
                                         "style": kit["style"]}])
    assert context.get_response_status(0)[0] == 400
    answer = json.loads(out[0])
    assert answer["code"] == "wrong_model" and "msgnet_learn" in answer["message"]


def _store_action(model, **body):
    out, context = handle(model, [{"body": body}])
    return context.get_response_status(0)[0], json.loads(out[0])


def test_rename_and_forget_a_learned_style_of_its_owner_only(photo_model, store) -> None:
    _save(photo_model, store, "ink", _random_target(photo_model, 1), owner="u1")
    StyleStore(store).thumbnail_path("ink", "u1").write_bytes(b"jpeg")
    _save(photo_model, store, "sea", _random_target(photo_model, 2), owner="u1")
    # another owner cannot touch it: to them it does not exist
    status, answer = _store_action(photo_model, action="forget", style_id="ink", owner="u2")
    assert (status, answer["code"], answer["field"]) == (404, "unknown_preset", "style_id")
    status, answer = _store_action(photo_model, action="rename", style_id="ink",
                                   new_name="flames", owner="u1")
    assert (status, answer) == (200, {"renamed": "ink", "to": "flames", "owner": "u1"})
    assert StyleStore(store).names("u1") == ["flames", "sea"]
    assert StyleStore(store).thumbnail_path("flames", "u1").is_file()  # the preview follows
    body, context = _stylize(photo_model, "flames", owner=b"u1")
    assert context.get_response_status(0)[0] == 200, body
    body, context = _stylize(photo_model, "ink", owner=b"u1")  # the old name is gone
    assert context.get_response_status(0)[0] == 404
    status, answer = _store_action(photo_model, action="forget", style_id="flames",
                                   owner="u1")
    assert (status, answer) == (200, {"forgotten": "flames", "owner": "u1"})
    assert StyleStore(store).names("u1") == ["sea"]
    body, context = _stylize(photo_model, "flames", owner=b"u1")  # never served from cache
    assert context.get_response_status(0)[0] == 404
    out, _ = handle(photo_model, [{"body": {"action": "presets", "owner": "u1"}}])
    assert json.loads(out[0])["learned"]["styles"] == ["sea"]


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"action": "rename", "style_id": "sea", "new_name": "My Sea"}, 400, "bad_option",
     "new_name"),
    ({"action": "rename", "style_id": "sea", "new_name": "../x"}, 400, "bad_option",
     "new_name"),
    ({"action": "rename", "style_id": "sea"}, 422, "missing_field", "new_name"),
    ({"action": "rename", "style_id": "sea", "new_name": "ink"}, 409, "name_exists",
     "new_name"),
    ({"action": "rename", "style_id": "sea", "new_name": "candy"}, 409, "name_exists",
     "new_name"),
    ({"action": "rename", "style_id": "nope", "new_name": "x"}, 404, "unknown_preset",
     "style_id"),
    ({"action": "forget"}, 422, "missing_field", "style_id"),
    ({"action": "forget", "style_id": "../ink"}, 400, "bad_option", "style_id"),
    ({"action": "forget", "style_id": "candy"}, 400, "bad_option", "style_id"),
    ({"action": "forget", "style_id": "nope"}, 404, "unknown_preset", "style_id"),
])
def test_bad_rename_and_forget_requests_are_4xx_and_change_nothing(
        photo_model, store, body, status, code, field) -> None:
    for name in ("sea", "ink"):
        _save(photo_model, store, name, _random_target(photo_model, 1), owner="u1")
    got, answer = _store_action(photo_model, **body, owner="u1")
    assert (got, answer["code"], answer["field"]) == (status, code, field), answer
    assert StyleStore(store).names("u1") == ["ink", "sea"]


# ---------------------------------------------------------------- parsing
def test_learn_requests_parse_from_form_and_json() -> None:
    settings = HandlerSettings(learn_max_steps=50)
    req = parse_request({"action": b"learn", "name": b"ink", "style": b"img", "steps": b"7",
                         "owner": b"123", "overwrite": b"true", "cancel_token": TOKEN.encode()},
                        settings)
    assert req == LearnRequest(req.style, "ink", "123", 7, True, TOKEN)
    req = parse_request({"body": {"action": "learn", "name": "ink", "style": "aW1n"}}, settings)
    assert (req.name, req.owner, req.steps, req.overwrite, req.style.data) == (
        "ink", "local", None, False, b"img")


@pytest.mark.parametrize(("fields", "status", "field", "words"), [
    ({"name": b"../../etc/x"}, 400, "name", "invalid style name"),
    ({"name": b"My Style"}, 400, "name", "invalid style name"),
    ({"name": b""}, 422, "name", "needs a name"),
    ({"style": None}, 422, "style", "needs the style picture"),
    ({"steps": b"0"}, 400, "steps", "between 1 and 50 steps"),
    ({"steps": b"51"}, 400, "steps", "between 1 and 50 steps"),
    ({"owner": b"../u"}, 400, "owner", "owner must be"),
    ({"overwrite": b"maybe"}, 400, "overwrite", "overwrite"),
])
def test_bad_learn_fields_are_4xx_naming_the_field(fields, status, field, words) -> None:
    from handler.errors import RequestError

    request = {"action": b"learn", "name": b"ink", "style": b"img", **fields}
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(RequestError) as info:
        parse_request(request, HandlerSettings(learn_max_steps=50))
    assert (info.value.status, info.value.field) == (status, field)
    assert words in info.value.message


def test_learn_is_an_archive_only_setting() -> None:
    assert HandlerSettings.from_model_yaml({}, {"MSGNET_LEARN": "1"}).learn == 0
    settings = HandlerSettings.from_model_yaml({}, {"MSGNET_STYLE_STORE": "/srv/styles",
                                                    "MSGNET_VGG": "/w/vgg.pt",
                                                    "MSGNET_LEARN_PHOTOS": "/p"})
    assert (settings.style_store, settings.vgg, settings.learn_photos) == (
        "/srv/styles", "/w/vgg.pt", "/p")
    with pytest.raises(ValueError, match="style_store must be an absolute path"):
        HandlerSettings(style_store="relative/styles")


# ---------------------------------------------------------------- the learn model
def _learn(model, fields: dict, sent: list | None = None):
    if sent is not None:
        model[0].progress_send = lambda ret, *args: sent.extend(ret)
    return handle(model, [{"action": b"learn", **fields}])


def test_learn_streams_progress_then_the_result_and_the_style_is_served(
        learn_model, photo_model, kit, store, monkeypatch) -> None:
    import handler.learning as learning

    monkeypatch.setattr(learning, "PROGRESS_MIN_S", 0.0)
    sent: list[str] = []
    out, context = _learn(learn_model, {"name": b"ink", "owner": b"u1", "steps": b"3",
                                        "style": kit["style"]}, sent)
    lines = [json.loads(line) for line in sent]
    assert lines[0] == {"step": 0, "steps": 3, "name": "ink", "owner": "u1"}
    assert [line["step"] for line in lines[1:]] == [1, 2, 3]
    assert all("style_ratio" in line and "content_ratio" in line for line in lines[1:])
    final = json.loads(out[0])
    assert context.get_response_content_type(0) == "application/x-ndjson"
    assert (final["status"], final["name"], final["owner"], final["steps"]) == (
        200, "ink", "u1", 3)
    assert final["seconds"] > 0 and isinstance(final["style_ratio"], float)
    assert StyleStore(store).names("u1") == ["ink"]
    assert StyleStore(store).thumbnail_path("ink", "u1").is_file()
    body, context = _stylize(photo_model, "ink", owner=b"u1")
    assert context.get_response_status(0)[0] == 200, body
    # its preview is the thumbnail of the style picture
    out, context = handle(photo_model, [{"body": {"action": "preview", "style_id": "ink",
                                                  "owner": "u1"}}])
    assert context.get_response_content_type(0) == "image/jpeg" and out[0][:2] == b"\xff\xd8"


def test_learn_without_progress_is_one_json_answer(learn_model, kit, store) -> None:
    out, context = _learn(learn_model, {"name": b"ink", "steps": b"1", "progress": b"false",
                                        "style": kit["style"]})
    assert context.get_response_status(0)[0] == 200
    assert context.get_response_content_type(0) == "application/json"
    assert json.loads(out[0])["name"] == "ink"


@pytest.mark.parametrize("case", ["not_image", "bad_name", "builtin", "exists", "full",
                                  "unwritable"])
def test_learn_errors_are_4xx_before_the_fit_and_lose_nothing(kit, store, tmp_path,
                                                               case: str) -> None:
    extra = {"store_max_per_owner": 2} if case == "full" else {}
    fields = {"name": b"ink", "steps": b"2", "style": kit["style"]}
    expect = {"not_image": (400, "not_an_image", "style:"),
              "bad_name": (400, "bad_option", "invalid style name"),
              "builtin": (409, "name_exists", "built-in preset"),
              "exists": (409, "name_exists", "overwrite=true"),
              "full": (409, "store_full", "limit"),
              "unwritable": (409, "store_not_writable", "read-only")}[case]
    if case == "unwritable":  # as root a read-only folder is writable: a file in the way
        (tmp_path / "disk").write_bytes(b"")
        store = tmp_path / "disk" / "store"
    model = serve(kit["root"], "tiny.pt", _config(store, learn=True, vgg=str(kit["vgg"]),
                                                  learn_photos=str(kit["photos"]), **extra),
                  batch_size=1)
    if case == "not_image":
        fields["style"] = bytearray(b"this is text, not a picture\n")
    elif case == "bad_name":
        fields["name"] = b"../evil"
    elif case == "builtin":
        fields["name"] = b"candy"
    elif case == "exists":
        _save(model, store, "ink", _random_target(model, 1))
    elif case == "full":
        for name in ("a", "b"):
            _save(model, store, name, _random_target(model, 1))
    before = sorted(p.name for p in store.rglob("*")) if store.is_dir() else []
    sent: list[str] = []
    out, context = _learn(model, fields, sent)
    answer = json.loads(out[0])
    assert sent == []  # refused before the fit: a real status, no stream
    assert (context.get_response_status(0)[0], answer["code"]) == expect[:2], answer
    assert expect[2] in answer["message"]
    after = sorted(p.name for p in store.rglob("*")) if store.is_dir() else []
    assert after == before


def test_overwrite_replaces_a_learned_style(learn_model, kit, store) -> None:
    _save(learn_model, store, "ink", _random_target(learn_model, 1) * 0)
    out, context = _learn(learn_model, {"name": b"ink", "steps": b"1", "overwrite": b"true",
                                        "progress": b"false", "style": kit["style"]})
    assert context.get_response_status(0)[0] == 200, out[0]
    assert StyleStore(store).load("ink").target.abs().sum() > 0


@pytest.mark.parametrize("missing", ["vgg", "learn_photos"])
def test_a_server_not_set_up_for_learning_answers_503(kit, store, missing: str) -> None:
    settings = {"vgg": str(kit["vgg"]), "learn_photos": str(kit["photos"])}
    settings[missing] = str(kit["root"] / "absent")
    model = serve(kit["root"], "tiny.pt", _config(store, learn=True, **settings), batch_size=1)
    out, context = _learn(model, {"name": b"ink", "style": kit["style"]})
    answer = json.loads(out[0])
    assert context.get_response_status(0)[0] == 503 and answer["code"] == "learning_unavailable"
    word = "MSGNET_VGG" if missing == "vgg" else "MSGNET_LEARN_PHOTOS"
    assert word in answer["message"] and str(kit["root"]) not in answer["message"]
    # the same worker still stylizes photos
    _, context = _stylize(model, "candy")
    assert context.get_response_status(0)[0] == 200


def test_a_cancel_stops_the_fit_and_saves_nothing(learn_model, kit, store,
                                                  monkeypatch) -> None:
    import handler.learning as learning

    monkeypatch.setattr(learning, "PROGRESS_MIN_S", 0.0)
    handler = learn_model[0]
    sent: list[str] = []

    def send(ret, *args) -> None:
        sent.extend(ret)
        if json.loads(ret[0])["step"] == 1:  # a cancel request arrives during the fit
            handler.cancels.request(TOKEN)

    handler.progress_send = send
    out, _ = handle(learn_model, [{"action": b"learn", "name": b"ink", "steps": b"50",
                                   "cancel_token": TOKEN.encode(), "style": kit["style"]}])
    final = json.loads(out[0])
    assert (final["status"], final["code"]) == (409, "cancelled")
    assert "after 2 of 50 steps" in final["message"] and "nothing was saved" in final["message"]
    assert StyleStore(store).names() == []
    assert not handler.cancels.requested(TOKEN)  # cleared for the next request

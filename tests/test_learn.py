"""Learning a style (msgnet.learning.learn), the style store, and the CLI around them, on tiny
weights and a tiny random loss network (no ../shared)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from weights_factory import make_tiny_weights, save_tiny_vgg

from msgnet.inference.stylize import Stylizer
from msgnet.learning.learn import LearnConfig, PhotoCrops, learn_style
from msgnet.learning.style_store import (
    InvalidStyleName,
    StoreFull,
    StoreNotWritable,
    StyleStore,
    StyleStoreError,
    WeightsMismatch,
)
from msgnet.learning.vgg import Vgg16Features
from msgnet.model import targets
from msgnet.model.checkpoint import load_weights, weights_fingerprint
from msgnet.model.net import inspiration_matrix

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_single_thread")
TINY_CFG = LearnConfig(steps=6, crop_size=32, photo_size=40, pool=4, style_size=48,
                       encoder_size=32)


@pytest.fixture(scope="module")
def kit(tmp_path_factory, rng_image) -> dict:
    root = tmp_path_factory.mktemp("learn")
    photos = root / "photos"
    photos.mkdir()
    for i in range(4):
        rng_image(56 + 4 * i, 44, seed=20 + i).save(photos / f"p{i}.jpg", quality=95)
    style = root / "style.png"
    rng_image(40, 40, seed=7).save(style)
    (root / "notes.png").write_bytes(b"this is text, not a picture\n")
    vgg = save_tiny_vgg(root / "vgg.pt")
    weights = make_tiny_weights(root / "w.pt")
    other = make_tiny_weights(root / "other.pt", seed=5)
    return {"root": root, "photos": photos, "style": style, "vgg": vgg, "weights": weights,
            "other": other, "not_image": root / "notes.png"}


def _fit(kit, **kw):
    from msgnet.imageio import load_image

    cfg = LearnConfig(**{**TINY_CFG.__dict__, **kw})
    loaded = load_weights(kit["weights"])
    photos = PhotoCrops(sorted(kit["photos"].glob("*.jpg")), cfg)
    return loaded, learn_style(loaded.net, Vgg16Features.from_file(kit["vgg"]),
                               load_image(kit["style"]), photos, cfg)


# ---------------------------------------------------------------------------- the fit
def test_learned_target_is_a_gram_and_decoder_affine_that_stylizes(kit):
    loaded, result = _fit(kit)
    c, k = loaded.net.channels, loaded.net.affine_size
    assert result.target.shape == (1, c, c + targets.extra_columns(c, k))
    assert torch.isfinite(result.target).all()
    gram, affine = targets.split(result.target, k)
    assert affine is not None and affine.abs().sum() > 0  # the fit moved the norms
    # the stored G gives back the fitted M through the layer's own maths
    m = inspiration_matrix(loaded.net.ins.weight.detach(), gram)
    assert m.shape == (1, c, c) and torch.isfinite(m).all()
    stylizer = Stylizer(loaded, max_size=64, default_size=48)
    x = torch.rand(1, 3, 40, 48) * 255
    out, gram_only = stylizer.run([x, x], [result.target, gram])
    assert out.shape == (1, 3, 40, 48) and not torch.equal(out, gram_only)
    assert loaded.net.decoder_norms()[0].style_affine is None  # the net is left as it was


def test_without_affine_the_target_is_a_plain_gram(kit):
    loaded, result = _fit(kit, affine=False, steps=2)
    c = loaded.net.channels
    assert result.target.shape == (1, c, c) and torch.isfinite(result.target).all()


def test_fitting_the_gram_itself_gives_a_usable_target(kit):
    loaded, result = _fit(kit, param="gram", steps=2, affine=False)
    c = loaded.net.channels
    assert result.target.shape == (1, c, c) and torch.isfinite(result.target).all()


def test_fit_lowers_the_style_ratio_and_leaves_the_network_alone(kit):
    loaded = load_weights(kit["weights"])
    before = {k: v.clone() for k, v in loaded.net.state_dict().items()}
    _, short = _fit(kit, steps=1, content_budget=None, content_weight=1e-3)
    _, long = _fit(kit, steps=30, content_budget=None, content_weight=1e-3, lr=0.05)
    assert long.style_ratio < short.style_ratio
    after = load_weights(kit["weights"]).net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_content_budget_raises_the_content_weight_when_the_photo_is_lost(kit):
    _, loose = _fit(kit, content_budget=10.0)  # any content ratio is under budget: weight falls
    _, tight = _fit(kit, content_budget=1e-4)  # none is: the weight rises
    assert tight.content_weight > 1.0 > loose.content_weight


def test_config_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="schedule"):
        LearnConfig(schedule="linear")
    with pytest.raises(ValueError, match="steps"):
        LearnConfig(steps=0)
    with pytest.raises(ValueError, match="param"):
        LearnConfig(param="weights")


# ---------------------------------------------------------------------------- the store
def test_store_saves_loads_lists_renames_and_deletes(tmp_path, rng_image):
    store = StyleStore(tmp_path / "store")
    assert store.names() == [] and store.used_bytes() == 0
    target = torch.rand(1, 8, 8)
    store.save("ink", target, "abc", thumbnail=rng_image(300, 200, seed=1), info={"s": 1})
    style = store.load("ink", fingerprint="abc")
    assert torch.equal(style.target, target) and style.info == {"s": 1}
    assert store.thumbnail_path("ink").is_file()
    store.save("fire", target, "abc", owner="12345")
    assert store.names() == ["ink"] and store.names("12345") == ["fire"]  # private per owner
    store.rename("ink", "ink2")
    assert store.names() == ["ink2"] and store.thumbnail_path("ink2").is_file()
    store.delete("ink2")
    assert store.names() == [] and not store.thumbnail_path("ink2").exists()
    assert not list((tmp_path / "store").rglob("*.tmp"))


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "", "UPPER", "a b",
                                  "x" * 41, "name.pt", "nul\x00"])
def test_store_refuses_names_that_are_not_plain(tmp_path, name):
    store = StyleStore(tmp_path)
    with pytest.raises(InvalidStyleName, match="invalid style name"):
        store.save(name, torch.zeros(1, 2, 2), "abc")
    assert not any(tmp_path.rglob("*"))


def test_store_refuses_other_weights_and_caps(tmp_path):
    store = StyleStore(tmp_path, max_per_owner=2, max_bytes=10_000)
    store.save("a", torch.zeros(1, 4, 4), "fp1")
    with pytest.raises(WeightsMismatch, match="learned with other weights"):
        store.load("a", fingerprint="fp2")
    with pytest.raises(StyleStoreError, match="exists already"):
        store.save("a", torch.zeros(1, 4, 4), "fp1")
    store.save("b", torch.zeros(1, 4, 4), "fp1")
    with pytest.raises(StoreFull, match="limit"):
        store.save("c", torch.zeros(1, 4, 4), "fp1")
    store.save("b", torch.ones(1, 4, 4), "fp1", overwrite=True)  # replacing is not growing
    with pytest.raises(StoreFull, match="full"):
        store.save("x", torch.zeros(1, 64, 64), "fp1", owner="other")  # 16 KiB > the bytes
    assert store.names() == ["a", "b"] and torch.equal(store.load("b").target,
                                                       torch.ones(1, 4, 4))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_store_on_a_read_only_disk_says_so(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StoreNotWritable, match="cannot write"):
            StyleStore(root).save("a", torch.zeros(1, 2, 2), "fp")
    finally:
        root.chmod(stat.S_IRWXU)


def test_store_on_a_read_only_file_system_says_so_before_any_work(tmp_path, monkeypatch):
    import tempfile

    def read_only(*a, **k):
        raise OSError(30, "Read-only file system")

    store = StyleStore(tmp_path / "store")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for attempt in (store.check_writable, lambda: store.save("a", torch.zeros(1, 2, 2), "fp")):
        with pytest.raises(StoreNotWritable, match="Read-only file system"):
            attempt()
    assert store.names() == []


def test_store_write_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    store = StyleStore(tmp_path)
    store.save("keep", torch.zeros(1, 2, 2), "fp")

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(StoreNotWritable, match="No space left"):
        store.save("keep", torch.ones(1, 2, 2), "fp", overwrite=True)
    monkeypatch.undo()
    assert torch.equal(store.load("keep").target, torch.zeros(1, 2, 2))
    assert not list(tmp_path.rglob("*.tmp"))


def test_fingerprint_follows_the_values_not_the_file(kit):
    a = load_weights(kit["weights"]).net.state_dict()
    b = load_weights(kit["other"]).net.state_dict()
    assert weights_fingerprint(a) == weights_fingerprint({k: v.clone() for k, v in a.items()})
    assert weights_fingerprint(a) != weights_fingerprint(b)
    assert Stylizer(load_weights(kit["weights"])).fingerprint == weights_fingerprint(a)


# ---------------------------------------------------------------------------- the CLI
def run_cli(*args, store: Path, **env) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
                    MSGNET_STYLE_STORE=str(store), **env)
    return subprocess.run([sys.executable, "-m", "msgnet", *map(str, args)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=180)


def test_learn_then_stylize_sheet_mix_and_list_through_the_cli(kit, tmp_path):
    store = tmp_path / "store"
    learn = run_cli("learn", kit["style"], "--name", "my-ink", "--photos", kit["photos"],
                    "--vgg", kit["vgg"], "--weights", kit["weights"], "--steps", "3",
                    store=store)
    assert learn.returncode == 0, learn.stderr
    assert "learned 'my-ink'" in learn.stdout and (store / "local" / "my-ink.pt").is_file()
    photo = kit["photos"] / "p0.jpg"
    for extra in ([], ["--preset", "candy:0.5", "--strength", "0.5", "--keep-colors"]):
        out = tmp_path / "out.png"
        r = run_cli("stylize", photo, "--preset", "my-ink" if not extra else "my-ink:0.5",
                    *extra, "-o", out, "--size", "32", "--weights", kit["weights"],
                    store=store)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes()[:4] == b"\x89PNG"
    sheet = run_cli("sheet", photo, "-o", tmp_path / "sheet.png", "--size", "64",
                    "--weights", kit["weights"], store=store)
    assert sheet.returncode == 0, sheet.stderr
    listed = run_cli("presets", "--weights", kit["weights"], store=store)
    assert listed.stdout.split("\n\n")[0].split() == ["candy", "mosaic", "udnie"]
    assert "learned" in listed.stdout and listed.stdout.rstrip().endswith("my-ink")
    # other weights: listed as such, refused by name with the reason
    other = run_cli("stylize", photo, "--preset", "my-ink", "-o", tmp_path / "o.png",
                    "--weights", kit["other"], store=store)
    assert other.returncode == 2 and "learned with other weights" in other.stderr
    assert "Traceback" not in other.stderr
    stale = run_cli("presets", "--weights", kit["other"], store=store)
    assert "my-ink  (learned with other weights" in stale.stdout
    gone = run_cli("forget", "my-ink", store=store)
    assert gone.returncode == 0 and not (store / "local" / "my-ink.pt").exists()


@pytest.mark.parametrize("case", ["not_image", "bad_name", "exists", "builtin", "no_photos",
                                  "no_vgg", "full", "unwritable"])
def test_learn_refuses_bad_input_in_one_line_and_writes_nothing(kit, tmp_path, case):
    store = tmp_path / "store"
    args = {"style": kit["style"], "name": "ok", "photos": kit["photos"], "vgg": kit["vgg"]}
    expect = {"not_image": "style image", "bad_name": "invalid style name",
              "exists": "exists already", "builtin": "built-in preset",
              "no_photos": "--photos", "no_vgg": "VGG16", "full": "limit",
              "unwritable": "cannot write to the style store"}[case]
    if case == "not_image":
        args["style"] = kit["not_image"]
    elif case == "bad_name":
        args["name"] = "../../etc/x"
    elif case == "exists":
        StyleStore(store).save("ok", torch.zeros(1, 2, 2), "fp")
    elif case == "builtin":
        args["name"] = "candy"
    elif case == "no_photos":
        args["photos"] = None
    elif case == "no_vgg":
        args["vgg"] = kit["root"] / "missing.pt"
    elif case == "unwritable":  # as root a read-only folder is writable: a file in the way
        (tmp_path / "disk").write_bytes(b"")
        store = tmp_path / "disk" / "store"
    cmd = ["learn", args["style"], "--name", args["name"], "--vgg", args["vgg"],
           "--weights", kit["weights"], "--steps", "1"]
    if args["photos"]:
        cmd += ["--photos", args["photos"]]
    env = {}
    if case == "full":
        for i in range(20):
            StyleStore(store).save(f"s{i}", torch.zeros(1, 2, 2), "fp")
    before = sorted(p.name for p in store.rglob("*")) if store.exists() else []
    r = run_cli(*cmd, store=store, MSGNET_LEARN_PHOTOS="", **env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expect in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    after = sorted(p.name for p in store.rglob("*")) if store.exists() else []
    assert after == before

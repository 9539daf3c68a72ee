"""Training and evaluation on tiny generated data with a tiny random loss network.

These keep the pipeline working without ../shared: a few steps, small images, ngf=8.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from msgnet.checkpoint import load_weights
from msgnet.evaluate import evaluate
from msgnet.preview import render_previews
from msgnet.train import TrainConfig, train
from msgnet.vgg import Vgg16Features


def _noise_image(path: Path, size: tuple[int, int], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    arr = (torch.rand(size[1], size[0], 3, generator=g) * 255).byte().numpy()
    Image.fromarray(arr, "RGB").save(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    content, styles, held_out = root / "content", root / "styles", root / "held_out"
    for d in (content, styles, held_out):
        d.mkdir()
    for i in range(5):
        _noise_image(content / f"photo{i}.jpg", (48 + 8 * i, 40), seed=i)
    for i in range(2):
        _noise_image(held_out / f"val{i}.png", (40, 32), seed=100 + i)
    for i, name in enumerate(("candy", "wave")):
        _noise_image(styles / f"{name}.jpg", (36, 36), seed=10 + i)
    torch.manual_seed(0)
    vgg = root / "vgg.pt"
    torch.save(Vgg16Features((4, 8, 8, 8)).state_dict(), vgg)
    return {"content": content, "styles": styles, "held_out": held_out, "vgg": vgg,
            "root": root}


def _config(data: dict[str, Path], out: Path, steps: int, **kw) -> TrainConfig:
    return TrainConfig(content_dir=str(data["content"]), style_dir=str(data["styles"]),
                       vgg=str(data["vgg"]), output=str(out), steps=steps, batch_size=2,
                       image_size=32, style_size=32, ngf=8, checkpoint_every=2, **kw)


def test_train_writes_weights_with_presets_and_metadata(data, tmp_path):
    out = train(_config(data, tmp_path / "w.pt", steps=3), progress=False)
    loaded = load_weights(out)
    assert sorted(loaded.presets) == ["candy", "wave"]
    assert loaded.presets["candy"].shape == (1, 32, 32)
    meta = loaded.metadata
    assert meta["steps"] == 3
    assert meta["data"] == {"content_images": 5, "styles": 2, "held_out_prefixes": []}
    assert meta["recipe"]["style_weight"] == 5.0 and meta["recipe"]["lr"] == 1e-3
    assert len(meta["losses_recent"]) and meta["losses_recent"]["step"] == 3


def test_train_is_deterministic_and_resumes(data, tmp_path):
    a = train(_config(data, tmp_path / "a.pt", steps=4), progress=False)
    # the same run in two halves: stop after 2 steps, then resume to 4
    train(_config(data, tmp_path / "b.pt", steps=2), progress=False)
    b = train(_config(data, tmp_path / "b.pt", steps=4), progress=False)
    wa, wb = load_weights(a).net.state_dict(), load_weights(b).net.state_dict()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=2e-3, rtol=1e-2)
    assert load_weights(b).metadata["steps"] == 4


def test_train_learns_on_tiny_data(data, tmp_path):
    out = train(_config(data, tmp_path / "w.pt", steps=12, crop_size=24), progress=False)
    history = torch.load(Path(out).with_name("w.trainstate.pt"), weights_only=False)["history"]
    first, last = history[0], history[-1]
    assert last["style"] + last["content"] < first["style"] + first["content"]


def test_held_out_prefix_is_excluded(data, tmp_path):
    out = train(_config(data, tmp_path / "w.pt", steps=1, exclude_prefix=["photo0"]),
                progress=False)
    assert load_weights(out).metadata["data"]["content_images"] == 4


def test_evaluate_report_and_gallery(data, tmp_path):
    weights = train(_config(data, tmp_path / "w.pt", steps=2), progress=False)
    report = evaluate(str(weights), str(data["held_out"]), str(data["styles"]),
                      str(data["vgg"]), str(tmp_path / "r.json"), str(tmp_path / "g.png"),
                      size=32, style_size=32, limit=2, gatys_pairs=1, gatys_steps=3,
                      gatys_size=24)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    assert len(saved["pairs"]) == 2 * 2
    for kind in ("model", "unstylized", "style_image"):
        assert saved["summary"][kind]["style"] >= 0
    # the photo itself has zero content loss; the style image does not
    assert saved["summary"]["unstylized"]["content"] == pytest.approx(0.0, abs=1e-6)
    assert saved["summary"]["style_image"]["content"] > 0
    assert saved["gatys"][0]["steps"] == 3
    with Image.open(tmp_path / "g.png") as gallery:
        # 3 columns (content + 2 styles) and 2 rows of 192 px cells plus a title row
        assert gallery.size == (3 * 192, 22 + 2 * 192)


def test_gatys_lowers_the_style_loss(data):
    from msgnet.evaluate import gatys, measure
    from msgnet.train import load_rgb, rgb_to_bgr_tensor
    from msgnet.vgg import style_grams

    vgg = Vgg16Features.from_file(data["vgg"])
    c = rgb_to_bgr_tensor(load_rgb(next(data["held_out"].iterdir()))).unsqueeze(0)
    s = rgb_to_bgr_tensor(load_rgb(data["styles"] / "candy.jpg")).unsqueeze(0)
    with torch.no_grad():
        targets, feats = style_grams(vgg(s)), vgg(c)
    before = measure(vgg, c, feats, targets)
    after = measure(vgg, gatys(vgg, c, targets, steps=20), feats, targets)
    assert after.style < before.style


def test_previews_for_every_preset(data, tmp_path):
    weights = train(_config(data, tmp_path / "w.pt", steps=1), progress=False)
    written = render_previews(weights, tmp_path / "previews", size=64)
    assert [p.name for p in written] == ["candy.jpg", "wave.jpg"]
    with Image.open(written[0]) as img:
        assert img.size == (64, 48)

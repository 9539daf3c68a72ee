"""Training and evaluation on tiny generated data with a tiny random loss network.

These keep the pipeline working without ../shared: a few steps, small images, ngf=8.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from msgnet.learning.vgg import Vgg16Features
from msgnet.model.checkpoint import load_weights
from msgnet.preview import render_previews
from msgnet.training.evaluate import evaluate
from msgnet.training.train import TrainConfig, train


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
    assert meta["data"] == {"content_images": 5, "styles": 2, "extra_styles": 0,
                            "held_out_prefixes": []}
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
    from msgnet.imageio import image_to_bgr, load_image
    from msgnet.learning.vgg import style_grams
    from msgnet.training.metrics import gatys, measure

    vgg = Vgg16Features.from_file(data["vgg"])
    c = image_to_bgr(load_image(next(data["held_out"].iterdir())))
    s = image_to_bgr(load_image(data["styles"] / "candy.jpg"))
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


def test_evaluate_tells_styles_apart(data, tmp_path):
    weights = train(_config(data, tmp_path / "w.pt", steps=2), progress=False)
    report = evaluate(str(weights), str(data["held_out"]), str(data["styles"]),
                      str(data["vgg"]), str(tmp_path / "r.json"), None, size=32,
                      style_size=32, limit=2, gatys_pairs=0, uploads=True, upload_size=24)
    assert report["upload_size"] == 24
    for kind in ("styles", "uploads"):
        figures = report["summary"][kind]
        assert figures["chance"] == 0.5 and figures["styles"] == 2 and figures["photos"] == 2
        assert 0.0 <= figures["identification"] <= 1.0
        assert figures["separation"] >= 0.0
        assert sorted(figures["per_style"]) == ["candy", "wave"]
        assert figures["per_style"]["candy"]["most_often_nearest"] in ("candy", "wave")


def test_style_figures_on_known_grams():
    from msgnet.training.metrics import Losses, Output, style_figures

    def g(v: float) -> list[torch.Tensor]:
        return [torch.full((1, 2, 2), v)]

    targets = {"a": g(0.0), "b": g(1.0)}
    # photo p: each output sits on its own style; photo q: both outputs sit on style a
    placed = (("p", "a", 0.0), ("p", "b", 1.0), ("q", "a", 0.0), ("q", "b", 0.0))
    outs = [Output(c, s, g(v), Losses(1.0, 2.0)) for c, s, v in placed]
    plain = {(c, s): Losses(4.0, 0.0) for c in "pq" for s in "ab"}
    as_style = {(c, s): Losses(0.0, 8.0) for c in "pq" for s in "ab"}
    fig = style_figures(outs, targets, plain, as_style)
    assert fig["identification"] == 0.75
    assert fig["per_style"]["b"]["identification"] == 0.5
    assert fig["separation"] == 0.5  # 1 for photo p, 0 for photo q
    assert fig["style_ratio"] == 0.25 and fig["content_ratio"] == 0.25


def test_content_pass_to_relu2_2_matches_the_full_pass():
    from msgnet.learning.vgg import CONTENT_LAYER, LAYERS

    torch.manual_seed(1)
    vgg = Vgg16Features((4, 8, 8, 8))
    x = torch.rand(2, 3, 32, 32) * 255
    full, short = vgg(x), vgg(x, upto=CONTENT_LAYER)
    assert list(full) == list(LAYERS) and list(short) == ["relu1_2", "relu2_2"]
    assert [f.shape[-1] for f in full.values()] == [32, 16, 8, 4]
    torch.testing.assert_close(short[CONTENT_LAYER], full[CONTENT_LAYER])


def test_cached_photos_give_the_same_crops(data):
    import random

    from msgnet.imageio import list_images
    from msgnet.training.data import ContentSampler

    files = list_images(data["content"])
    a = ContentSampler(files, 32, random.Random(3), crop=24)
    b = ContentSampler(files, 32, random.Random(3), crop=24)
    b._resized = type("Forget", (dict,), {"__setitem__": lambda *_: None})()
    for _ in range(2 * len(files)):  # two epochs: the second one comes from the cache
        torch.testing.assert_close(a.sample(), b.sample())
    assert len(a._resized) == len(files)


def test_style_encoder_size_and_training_diagnostics(data, tmp_path):
    out = train(_config(data, tmp_path / "w.pt", steps=2, style_encoder_size=24), progress=False)
    loaded = load_weights(out)
    assert loaded.metadata["style_encoder_size"] == 24
    # the bank is encoded at the size the encoder was trained on
    net = loaded.net
    from msgnet.imageio import list_images
    from msgnet.training.data import load_styles

    small = load_styles(list_images(data["styles"]), 24)
    with torch.no_grad():
        expected = net.style_target(small["candy"])
    torch.testing.assert_close(loaded.presets["candy"], expected, atol=2e-3, rtol=2e-2)
    history = torch.load(Path(out).with_name("w.trainstate.pt"), weights_only=False)["history"]
    assert history[-1]["p_rank"] >= 1.0 and history[-1]["gram_rank"] >= 1.0
    assert history[-1]["s_per_step"] > 0


def test_inverse_gram_init_passes_the_significant_subspace():
    from msgnet.model.net import Net
    from msgnet.training.inspiration import effective_rank, inverse_gram_init

    torch.manual_seed(2)
    net = Net(ngf=8)
    c = net.channels
    basis = torch.linalg.qr(torch.randn(c, c))[0]
    spectrum = torch.tensor([10.0, 5.0, 2.0, 1.0] + [1e-6] * (c - 4))
    gram = (basis * spectrum) @ basis.T
    before = effective_rank(net.ins.weight[0].detach() @ gram)
    inverse_gram_init(net, [gram.unsqueeze(0)], lam=1e-3)
    p = net.ins.weight[0].detach() @ gram
    top = basis[:, :4]
    # P acts as the identity on the four significant directions
    torch.testing.assert_close(p @ top, top, atol=1e-3, rtol=1e-3)
    assert effective_rank(p) > before
    with pytest.raises(ValueError, match="larger lambda"):
        inverse_gram_init(net, [gram.unsqueeze(0)], lam=1e-9)
    with pytest.raises(ValueError, match="> 0"):
        inverse_gram_init(net, [gram.unsqueeze(0)], lam=0)


def test_init_inspiration_applies_on_a_fresh_start_only(data, tmp_path):
    out = train(_config(data, tmp_path / "w.pt", steps=2, init_inspiration=1e-2), progress=False)
    meta = load_weights(out).metadata["inspiration_init"]
    assert meta["lambda"] == 1e-2 and meta["max_abs_weight"] > 0
    # resuming keeps the trained W and the record of the init
    resumed = train(_config(data, tmp_path / "w.pt", steps=4, init_inspiration=1e-2),
                    progress=False)
    assert load_weights(resumed).metadata["inspiration_init"] == meta


def test_gallery_cells_keep_a_gutter():
    from msgnet.training.evaluate import make_gallery

    wide = Image.new("RGB", (300, 100), "black")
    grid = make_gallery([[wide, wide]], ["a", "b"], cell=100, gutter=5)
    # the white gutter separates two neighbouring landscape pictures
    assert grid.getpixel((100, 22 + 50)) == (255, 255, 255)
    assert grid.getpixel((50, 22 + 50)) == (0, 0, 0)


def test_train_bench_smoke(tmp_path):
    from workbench import train_bench as bench

    out = tmp_path / "b.json"
    assert bench.main(["--ngf", "8", "--rounds", "1", "--steps", "1", "--crop-size", "32",
                       "--batch-size", "1", "--threads", "1", "--variants", "recipe",
                       "+encoder-256", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [v["variant"] for v in result["variants"]] == ["recipe", "+encoder-256"]
    assert result["variants"][0]["ratio_to_first"] == 1.0
    with pytest.raises(SystemExit):
        bench.main(["--variants", "nope"])


def test_training_curve_rows_and_plot(data, tmp_path):
    from workbench import training_curve as curve

    weights = train(_config(data, tmp_path / "w.pt", steps=2), progress=False)
    evaluate(str(weights), str(data["held_out"]), str(data["styles"]), str(data["vgg"]),
             str(tmp_path / "r.json"), None, size=32, style_size=32, limit=2, gatys_pairs=0)
    rows = tmp_path / "rows.json"
    for steps in (2, 2, 5):  # adding a checkpoint twice replaces its row
        assert curve.main(["--data", str(rows), "add", str(tmp_path / "r.json"),
                           "--total-steps", str(steps), "--protocol", "quick"]) == 0
    saved = json.loads(rows.read_text())["rows"]
    assert [r["total_steps"] for r in saved] == [2, 5]
    assert saved[0]["styles"] == 2 and saved[0]["chance"] == 0.5
    png = tmp_path / "curve.png"
    assert curve.main(["--data", str(rows), "plot", "-o", str(png)]) == 0
    with Image.open(png) as img:
        assert img.width > 500


def test_evaluate_and_preview_refuse_missing_inputs_in_one_line(data, tmp_path, capsys):
    from msgnet.cli import main as cli_main
    from msgnet.preview import main as preview_main

    weights = train(_config(data, tmp_path / "w.pt", steps=1), progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    code = cli_main(["evaluate", "--weights", str(weights), "--content-dir", str(empty),
                     "--style-dir", str(data["styles"]), "--vgg", str(data["vgg"]),
                     "-o", str(tmp_path / "r.json")])
    assert code == 2 and "no content images in" in capsys.readouterr().err
    bare = tmp_path / "bare.pt"
    from msgnet.model.checkpoint import save_weights

    save_weights(bare, load_weights(weights).net, presets={})
    assert preview_main(["--weights", str(bare), "-o", str(tmp_path / "p")]) == 2
    assert "has no presets" in capsys.readouterr().err


def test_warmup_counts_from_the_optimizers_first_step_and_survives_a_resume(data, tmp_path):
    out = tmp_path / "w.pt"

    def lr_of() -> list[float]:
        state = torch.load(out.with_name("w.trainstate.pt"), weights_only=False)
        return [g["lr"] for g in state["optimizer"]["param_groups"]]

    train(_config(data, out, steps=2, warmup_steps=4), progress=False)
    assert lr_of() == [pytest.approx(5e-4)]  # the second step ran at 2/4 of the rate
    train(_config(data, out, steps=6, warmup_steps=4), progress=False)
    assert lr_of() == [pytest.approx(1e-3)]


def test_ema_weights_go_to_the_weights_file_and_resume(data, tmp_path):
    out = tmp_path / "w.pt"
    train(_config(data, out, steps=2, ema_decay=0.5), progress=False)
    state = torch.load(out.with_name("w.trainstate.pt"), weights_only=False)
    shipped = load_weights(out).net.state_dict()
    key = "model1.0.conv2d.weight"
    torch.testing.assert_close(shipped[key], state["ema"][key].float(), atol=2e-3, rtol=1e-2)
    assert not torch.allclose(shipped[key], state["net"][key].float(), atol=1e-4)
    train(_config(data, out, steps=4, ema_decay=0.5), progress=False)
    assert torch.load(out.with_name("w.trainstate.pt"), weights_only=False)["step"] == 4


def test_style_balance_weights_even_out_the_styles():
    from msgnet.training.style_balance import balance_weights

    losses = {"near": 1e5, "mid": 4e5, "far": 1.6e6}
    assert balance_weights(losses, 0.0) == {"near": 1.0, "mid": 1.0, "far": 1.0}
    full = balance_weights(losses, 1.0)
    # the geometric mean is 4e5: each weighted loss lands on it, the mean log-weight is 0
    assert {n: round(w * losses[n]) for n, w in full.items()} == dict.fromkeys(losses, 400000)
    half = balance_weights(losses, 0.5)
    assert half["near"] == pytest.approx(2.0) and half["far"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="positive"):
        balance_weights({"a": 1.0, "b": 0.0}, 1.0)


def test_style_balance_scales_each_styles_loss_and_keeps_the_draws(data, tmp_path):
    plain = train(_config(data, tmp_path / "a.pt", steps=1), progress=False)
    balanced = train(_config(data, tmp_path / "b.pt", steps=1, style_balance=1.0),
                     progress=False)
    meta = load_weights(balanced).metadata["style_balance"]
    weights, unstylized = meta["weights"], meta["unstylized_style_loss"]
    assert set(weights) == {"candy", "wave"} and meta["alpha"] == 1.0
    assert weights["candy"] * weights["wave"] == pytest.approx(1.0, rel=1e-3)
    assert (weights["candy"] > 1) == (unstylized["candy"] < unstylized["wave"])
    assert load_weights(plain).metadata["style_balance"] is None
    h_plain, h_bal = (torch.load(p.with_name(p.stem + ".trainstate.pt"),
                                 weights_only=False)["history"] for p in (plain, balanced))
    # the one step (candy) is the same draw on the same weights: only its style term scales
    assert h_bal[0]["content"] == pytest.approx(h_plain[0]["content"], rel=1e-4)
    assert h_bal[0]["style"] == pytest.approx(h_plain[0]["style"] * weights["candy"], rel=1e-3)


def test_style_factor_parses_and_refuses_what_it_cannot_use():
    from msgnet.training.style_balance import apply_style_factors, parse_style_factors

    assert parse_style_factors(["candy=1.5", "wave=0.5"]) == {"candy": 1.5, "wave": 0.5}
    assert parse_style_factors(None) == {}
    for bad in ("candy", "=2", "candy=x", "candy=0", "candy=-1", "candy=nan"):
        with pytest.raises(ValueError, match="NAME=FACTOR"):
            parse_style_factors([bad])
    assert apply_style_factors({"candy": 2.0, "wave": 0.5}, {"candy": 1.5}) == {
        "candy": 3.0, "wave": 0.5}
    with pytest.raises(ValueError, match=r"unknown styles \['mosiac'\]"):
        apply_style_factors({"candy": 1.0, "mosaic": 1.0}, {"mosiac": 2.0})


def test_style_factor_scales_one_styles_loss(data, tmp_path):
    plain = train(_config(data, tmp_path / "a.pt", steps=1), progress=False)
    scaled = train(_config(data, tmp_path / "b.pt", steps=1, style_factor=["candy=3"]),
                   progress=False)
    assert load_weights(scaled).metadata["style_factors"] == {"candy": 3.0}
    assert load_weights(plain).metadata["style_factors"] is None
    h_plain, h_scaled = (torch.load(p.with_name(p.stem + ".trainstate.pt"),
                                    weights_only=False)["history"] for p in (plain, scaled))
    # the one step is candy's, on the same draw and weights: only its style term scales
    assert h_scaled[0]["content"] == pytest.approx(h_plain[0]["content"], rel=1e-4)
    assert h_scaled[0]["style"] == pytest.approx(h_plain[0]["style"] * 3.0, rel=1e-3)


def test_step_style_gives_the_extras_their_share_and_keeps_every_preset():
    from msgnet.training.data import step_style

    presets, extras = ["a", "b", "c"], ["x", "y", "z", "w"]
    drawn = [step_style(s, presets, extras, 0.5, [2, 0, 3, 1]) for s in range(24)]
    assert sum(d in extras for d in drawn) == 12
    assert [d for d in drawn if d in presets] == presets * 4  # the presets still cycle
    assert [d for d in drawn if d in extras][:4] == ["z", "x", "w", "y"]
    assert [step_style(s, presets, [], 0.5, []) for s in range(4)] == ["a", "b", "c", "a"]
    assert sum(step_style(s, presets, extras, 0.25, [0, 1, 2, 3]) in extras
               for s in range(100)) == 25


def test_extra_styles_train_but_stay_out_of_the_preset_bank(data, tmp_path):
    from msgnet.training.step import decoder_parameters

    extra = tmp_path / "extra"
    extra.mkdir()
    for i, name in enumerate(("ink", "fire", "candy")):  # candy: a preset's twin, skipped
        _noise_image(extra / f"{name}.png", (40, 30), seed=50 + i)
    before = load_weights(train(_config(data, tmp_path / "a.pt", steps=1), progress=False))
    out = train(_config(data, tmp_path / "w.pt", steps=4, extra_style_dir=[str(extra)],
                        freeze_decoder=True, init_weights=str(tmp_path / "a.pt")),
                progress=False)
    loaded = load_weights(out)
    assert sorted(loaded.presets) == ["candy", "wave"]
    assert loaded.metadata["data"]["extra_styles"] == 2
    frozen = {id(p) for p in decoder_parameters(loaded.net)}
    old, new = before.net.state_dict(keep_vars=True), loaded.net.state_dict(keep_vars=True)
    moved = {k for k in old if not torch.equal(old[k].data, new[k].data)}
    assert moved and all(id(new[k]) not in frozen for k in moved)
    assert any(k.startswith("model1.") for k in moved)


def test_extra_share_out_of_range_is_refused(data, tmp_path):
    with pytest.raises(ValueError, match="--extra-share"):
        train(_config(data, tmp_path / "w.pt", steps=1, extra_style_dir=[str(data["styles"])],
                      extra_share=1.0), progress=False)

"""``python -m msgnet train-predictor`` end to end on tiny weights: it writes a predictor the
weights load, resumes exactly from its trainstate, leaves val_ photos out, and the uploads of a
Stylizer then carry the affine."""

from __future__ import annotations

import json
import random

import pytest
import torch
from weights_factory import make_tiny_weights

from msgnet.cli import main as cli_main
from msgnet.inference.stylize import Stylizer
from msgnet.learning.vgg import Vgg16Features
from msgnet.model.checkpoint import load_weights
from msgnet.model.predictor import load_predictor, sidecar_path
from msgnet.model.targets import has_affine
from msgnet.training.predictor import augment, photo_crops


@pytest.fixture
def setup(tmp_path, rng_image):
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    photos.mkdir()
    styles.mkdir()
    for i in range(3):
        rng_image(300, 280, seed=i).save(photos / f"p{i}.jpg")
    rng_image(300, 280, seed=9).save(photos / "val_held.jpg")
    for i in range(2):
        rng_image(80, 64, seed=20 + i).save(styles / f"s{i}.png")
    torch.manual_seed(0)
    vgg = tmp_path / "vgg.pt"
    torch.save(Vgg16Features((4, 8, 8, 8)).state_dict(), vgg)
    weights = make_tiny_weights(tmp_path / "w.pt")
    return {"photos": photos, "styles": styles, "vgg": vgg, "weights": weights,
            "run": tmp_path / "run", "image": rng_image}


def _argv(s, steps: int) -> list[str]:
    return ["train-predictor", "--weights", str(s["weights"]), "--vgg", str(s["vgg"]),
            "--style-dir", str(s["styles"]), "--photos", str(s["photos"]), "--run", str(s["run"]),
            "--steps", str(steps), "--batch", "2", "--variants", "2", "--style-size", "64",
            "--pool", "3", "--hidden", "16", "--bottleneck", "4", "--save-every", "2",
            "--lr", "0.01"]


def test_trains_resumes_and_serves(setup, capsys):
    assert cli_main(_argv(setup, 2)) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["predictor"] == str(sidecar_path(setup["weights"]))
    first = load_predictor(sidecar_path(setup["weights"]))
    assert first.metadata["steps"] == 2 and first.metadata["styles"] == 4
    assert float(first.head.weight.abs().sum().detach()) > 0  # it moved from the identity
    assert (setup["run"] / "predictor-2.pt").is_file()
    assert cli_main(_argv(setup, 4)) == 0
    assert "resumed at step 2" in capsys.readouterr().out
    assert torch.load(setup["run"] / "trainstate.pt", weights_only=True)["step"] == 4
    st = Stylizer(load_weights(setup["weights"]))
    assert st.predictor is not None
    assert has_affine(st.style_target(setup["image"](50, 40, seed=3)))


def test_photo_crops_leave_out_held_out_photos(setup):
    crops = photo_crops(setup["photos"], 10, seed=0)
    assert crops.shape == (3, 3, 128, 128)


@pytest.mark.parametrize("seed", range(6))
def test_augment_gives_an_rgb_picture_of_the_style(seed, rng_image):
    img = rng_image(60, 40, seed=seed)
    out = augment(img, random.Random(seed))
    assert out.mode == "RGB" and 36 <= out.size[0] <= 60 and 24 <= out.size[1] <= 40


def test_regularised_training_records_its_settings_and_predicts_deterministically(setup):
    argv = [*_argv(setup, 2), "--dropout", "0.5", "--feature-noise", "0.3",
            "--weight-decay", "0.01", "--crop-min", "0.3"]
    assert cli_main(argv) == 0
    pred = load_predictor(sidecar_path(setup["weights"]))
    assert {k: pred.metadata[k] for k in ("dropout", "feature_noise", "weight_decay",
                                          "crop_min")} == {"dropout": 0.5, "feature_noise": 0.3,
                                                           "weight_decay": 0.01, "crop_min": 0.3}
    x = torch.randn(3, pred.shape["in_features"])
    assert torch.equal(pred(x), pred(x))  # a served predictor drops nothing


@pytest.mark.parametrize("seed", range(4))
def test_augment_crops_no_smaller_than_asked(seed, rng_image):
    out = augment(rng_image(100, 50, seed=seed), random.Random(seed), crop_min=0.3)
    assert 30 <= out.size[0] <= 100 and 15 <= out.size[1] <= 50


def test_textures_and_collages_join_the_styles(setup):
    argv = [*_argv(setup, 1), "--textures", "2", "--collages", "1", "--crop-min", "0.5"]
    assert cli_main(argv) == 0
    pred = load_predictor(sidecar_path(setup["weights"]))
    assert pred.metadata["styles"] == 2 * 2 + 1 + 2
    assert (setup["run"] / "styles_v2_s64_c0.5_t2_m1.pt").is_file()


def test_trains_an_encoder_stats_predictor(setup):
    assert cli_main([*_argv(setup, 1), "--features", "encoder-stats"]) == 0
    pred = load_predictor(sidecar_path(setup["weights"]))
    assert pred.features == "encoder-stats" and pred.metadata["features"] == "encoder-stats"
    assert (setup["run"] / "styles_v2_s64_encoder-stats.pt").is_file()
    st = Stylizer(load_weights(setup["weights"]))
    assert has_affine(st.style_target(setup["image"](50, 40, seed=3)))

"""The style predictor (msgnet.model.predictor): a sidecar file beside the weights that gives an
upload's target the decoder affine, and everything that must hold when it is there or not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from weights_factory import make_tiny_weights, seeded_pixels

from msgnet.inference.controls import mix_targets
from msgnet.inference.stylize import Stylizer
from msgnet.model.checkpoint import load_weights, weights_fingerprint
from msgnet.model.predictor import (
    PredictorError,
    StylePredictor,
    load_predictor,
    save_predictor,
    sidecar_path,
    style_features,
)
from msgnet.model.targets import has_affine, split


def _picture(seed: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    pixels = seeded_pixels(size[1], size[0], 3, seed=seed).to(torch.uint8).numpy()
    return Image.fromarray(pixels, "RGB")


def _predictor_for(weights, nonzero: bool = True, seed: int = 0) -> StylePredictor:
    loaded = load_weights(weights, predictor=False)
    c = loaded.net.channels
    pred = StylePredictor(c + 3 + 6 + 24, loaded.net.affine_size, hidden=16, bottleneck=8)
    if nonzero:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in pred.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    save_predictor(pred, sidecar_path(weights), weights_fingerprint(loaded.net.state_dict()),
                   {"note": "test"})
    return pred


@pytest.fixture
def weights(tmp_path):
    return make_tiny_weights(tmp_path / "tiny.pt")


def test_sidecar_name():
    assert sidecar_path("weights/msgnet-21styles.pt").name == "msgnet-21styles.predictor.pt"


def test_without_a_sidecar_uploads_are_plain_grams(weights):
    st = Stylizer(load_weights(weights))
    assert st.predictor is None
    t = st.style_target(_picture(1))
    assert t.shape[-1] == t.shape[-2]


def test_a_sidecar_is_loaded_and_uploads_carry_the_affine(weights):
    _predictor_for(weights)
    loaded = load_weights(weights)
    assert loaded.predictor is not None and loaded.predictor.metadata == {"note": "test"}
    st = Stylizer(loaded)
    t = st.style_target(_picture(1))
    assert has_affine(t)
    gram, affine = split(t, st.net.affine_size)
    assert torch.allclose(gram, st.style_target(_picture(1), predict=False))
    assert affine.abs().sum() > 0
    # the same picture gives the same target; another picture another affine
    assert torch.equal(t, st.style_target(_picture(1)))
    assert not torch.equal(split(st.style_target(_picture(2)), st.net.affine_size)[1], affine)


def test_predicted_affine_changes_the_picture_and_presets_stay(weights):
    _predictor_for(weights)
    with_pred = Stylizer(load_weights(weights))
    without = Stylizer(load_weights(weights, predictor=False))
    photo = _picture(3, (64, 64))
    style = _picture(4)
    a = with_pred.stylize(photo, with_pred.style_target(style), 64)
    b = without.stylize(photo, without.style_target(style), 64)
    assert a.size == b.size == photo.size
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    # presets are Gram targets from the bank: untouched by the predictor
    name = with_pred.preset_names()[0]
    assert np.array_equal(np.asarray(with_pred.stylize(photo, name, 64)),
                          np.asarray(without.stylize(photo, name, 64)))


def test_a_zero_predictor_is_the_identity(weights):
    _predictor_for(weights, nonzero=False)
    with_pred = Stylizer(load_weights(weights))
    without = Stylizer(load_weights(weights, predictor=False))
    photo, style = _picture(5, (64, 64)), _picture(6)
    a = with_pred.stylize(photo, with_pred.style_target(style), 64)
    b = without.stylize(photo, without.style_target(style), 64)
    diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max()
    assert diff <= 1  # the folded affine rounds differently, nothing more


def test_other_style_sizes_take_features_at_the_predictor_size(weights):
    _predictor_for(weights)
    st = Stylizer(load_weights(weights))
    style = _picture(7, (300, 200))
    small, big = st.style_target(style, 256), st.style_target(style, 384)
    assert torch.allclose(split(small, st.net.affine_size)[1], split(big, st.net.affine_size)[1])


def test_predicted_uploads_mix_with_presets(weights):
    _predictor_for(weights)
    st = Stylizer(load_weights(weights))
    mixed = mix_targets([st.style_target(_picture(8)), st.preset_target(st.preset_names()[0])])
    assert has_affine(mixed)
    assert st.stylize(_picture(9, (64, 64)), mixed, 64).size == (64, 64)


def test_a_predictor_for_other_weights_is_refused(tmp_path, weights):
    other = make_tiny_weights(tmp_path / "other.pt", seed=5)
    _predictor_for(other)
    sidecar_path(other).rename(sidecar_path(weights))
    with pytest.raises(PredictorError, match="trained for other weights"):
        load_weights(weights)
    assert load_weights(weights, predictor=False).predictor is None


@pytest.mark.parametrize("content", [b"", b"not a torch file", None])
def test_a_broken_sidecar_is_refused_with_its_name(weights, content):
    side = sidecar_path(weights)
    if content is None:
        torch.save({"format": "something else"}, side)
    else:
        side.write_bytes(content)
    with pytest.raises(PredictorError, match="predictor"):
        load_weights(weights)


def test_round_trip_keeps_the_predictions(tmp_path, weights):
    pred = _predictor_for(weights)
    back = load_predictor(sidecar_path(weights))
    f = style_features(torch.rand(1, 3, 32, 48) * 255, torch.rand(1, 32, 32) + 0.1)
    assert f.shape == (1, 32 + 3 + 6 + 24)
    assert torch.allclose(pred(f), back(f), atol=2e-2)  # fp16 on disk


def _encoder_stats_predictor(weights) -> StylePredictor:
    loaded = load_weights(weights, predictor=False)
    x = torch.rand(1, 3, 40, 56) * 255
    f = style_features(x, loaded.net.style_target(x), loaded.net.model1, "encoder-stats")
    pred = StylePredictor(f.shape[1], loaded.net.affine_size, hidden=16, bottleneck=8,
                          features="encoder-stats")
    with torch.no_grad():
        for p in pred.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    save_predictor(pred, sidecar_path(weights), weights_fingerprint(loaded.net.state_dict()))
    return pred


def test_encoder_stats_features_describe_texture_and_luminance(weights):
    net = load_weights(weights, predictor=False).net
    flat = torch.full((1, 3, 48, 48), 128.0)
    lines = flat.clone()
    lines[..., ::4, :] = 0  # same mean colour family, far more contrast
    fa, fb = (style_features(x, net.style_target(x), net.model1, "encoder-stats")
              for x in (flat, lines))
    base = style_features(flat, net.style_target(flat))
    assert fa.shape == fb.shape and fa.shape[1] > base.shape[1]
    assert torch.equal(fa[:, :base.shape[1]], base)  # the first kind's features come first
    assert torch.isfinite(fa).all() and not torch.allclose(fa, fb)
    with pytest.raises(ValueError):
        style_features(flat, net.style_target(flat), None, "encoder-stats")
    with pytest.raises(PredictorError, match="unknown feature kind"):
        style_features(flat, net.style_target(flat), net.model1, "vgg")


def test_an_encoder_stats_predictor_round_trips_and_serves(weights):
    pred = _encoder_stats_predictor(weights)
    blob = torch.load(sidecar_path(weights), weights_only=True)
    assert blob["format_version"] == 2 and blob["shape"]["features"] == "encoder-stats"
    loaded = load_weights(weights)
    assert loaded.predictor.features == "encoder-stats"
    st = Stylizer(loaded)
    t = st.style_target(_picture(8))
    assert has_affine(t)
    x = torch.rand(1, 3, 40, 56) * 255
    f = pred.describe(x, loaded.net.style_target(x), loaded.net.model1)
    assert torch.allclose(pred(f), loaded.predictor(f), atol=2e-2)


def test_a_first_kind_file_keeps_format_version_1(weights):
    _predictor_for(weights)
    blob = torch.load(sidecar_path(weights), weights_only=True)
    assert blob["format_version"] == 1 and "features" not in blob["shape"]

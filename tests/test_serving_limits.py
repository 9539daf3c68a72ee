"""Output-size limit and inference settings of the handler (max_size up to 4096, env overrides,
variant and tiling wired into the Stylizer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from handler.settings import MAX_OUTPUT_SIZE, HandlerSettings
from msgnet.inference.stylize import Stylizer
from msgnet.inference.tiling import TiledForward

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_model_config_is_valid_and_defaults_to_2048() -> None:
    cfg = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
    s = HandlerSettings.from_model_yaml(cfg, environ={})
    assert s.max_size == 2048 and s.sizes[-1] == 2048 and s.variant == "fast"


def test_max_size_up_to_4096_offers_the_larger_sizes() -> None:
    s = HandlerSettings(max_size=4096)
    assert s.sizes == [512, 768, 1024, 1536, 2048, 3072, 4096]
    with pytest.raises(ValueError, match="at most 4096"):
        HandlerSettings(max_size=MAX_OUTPUT_SIZE + 4)


def test_environment_overrides_the_yaml() -> None:
    cfg = {"handler": {"max_size": 1024}}
    s = HandlerSettings.from_model_yaml(cfg, environ={"MSGNET_MAX_SIZE": "4096",
                                                      "MSGNET_VARIANT": "eager",
                                                      "MSGNET_TILE_PIXELS": " "})
    assert (s.max_size, s.variant, s.tile_pixels) == (4096, "eager", 1024 * 1024)
    assert HandlerSettings.from_model_yaml(cfg, environ={}).max_size == 1024
    with pytest.raises(ValueError, match="MSGNET_MAX_SIZE must be an integer"):
        HandlerSettings.from_model_yaml(cfg, environ={"MSGNET_MAX_SIZE": "big"})
    with pytest.raises(ValueError, match="at most 4096"):
        HandlerSettings.from_model_yaml(cfg, environ={"MSGNET_MAX_SIZE": "8192"})


def test_msgnet_threads_replaces_only_an_automatic_thread_count(tmp_path: Path) -> None:
    """A container sets MSGNET_THREADS for the photo worker; the clip archive's one thread
    (scripts/clip_model.py) must hold in the same server."""
    from scripts import clip_model

    env = {"MSGNET_THREADS": "2"}
    photo = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
    clip = yaml.safe_load(clip_model.write_clip_config(tmp_path / "clip.yaml").read_text())
    assert HandlerSettings.from_model_yaml(photo, environ=env).torch_threads(photo) == 2
    assert HandlerSettings.from_model_yaml(clip, environ=env).torch_threads(clip) == 1
    assert HandlerSettings.from_model_yaml(photo, environ={}).threads == 0


def test_bad_variant_and_tiling_settings_fail_the_load() -> None:
    with pytest.raises(ValueError, match="handler.variant must be one of"):
        HandlerSettings(variant="turbo")
    with pytest.raises(ValueError, match="handler tiling settings"):
        HandlerSettings(tile_size=30)


@pytest.mark.usefixtures("torch_single_thread")
def test_stylizer_tiles_above_the_threshold(tiny_weights_path: Path, rng_image) -> None:
    s = HandlerSettings(tile_pixels=96 * 96, tile_size=64, thumb_size=64)
    stylizer = Stylizer.from_file(tiny_weights_path, max_size=256, default_size=64, variant="fast",
                                  tiling=s.tile_config())
    untiled = Stylizer.from_file(tiny_weights_path, max_size=256, default_size=64,
                                  variant="eager")
    assert isinstance(stylizer.forward_fn, TiledForward)
    target = stylizer.preset_target("candy")
    small = stylizer.prepare_content(rng_image(90, 60), 90)
    big = stylizer.prepare_content(rng_image(150, 110, seed=2), 150)
    out = stylizer.run([small, big], [target, target])
    ref = untiled.run([small, big], [target, target])
    assert stylizer.forward_fn.tiled_calls == 1 and out[1].shape == (1, 3, 110, 150)
    torch.testing.assert_close(out[0], ref[0], atol=1e-2, rtol=0)  # under the threshold
    psnr = 10 * torch.log10(255.0 ** 2 / ((out[1] - ref[1]) ** 2).mean())
    assert psnr > 20, float(psnr)


def test_the_batch_rss_script_measures_a_batch(tiny_weights_path: Path, capsys) -> None:
    """workbench/ts_batch_rss.py (docs/reliability.md's figures) on tiny weights, 2 x 64 px."""
    import json

    from workbench import ts_batch_rss

    assert ts_batch_rss.main(["--count", "2", "--size", "64", "--threads", "1",
                              "--batch-pixels", "4096", "--weights",
                              str(tiny_weights_path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["codes"] == [200, 200] and result["batch_pixels"] == 4096
    assert 0 < result["peak_after_load_gb"] <= result["peak_rss_gb"] < 8

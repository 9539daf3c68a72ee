"""msgnet.model.checkpoint: the authors' layout (fabricated, seeded), our format, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from weights_factory import (
    TINY_PRESETS,
    make_net,
    make_tiny_weights,
    official_layout_state_dict,
    seeded_pixels,
)

from msgnet.model.checkpoint import (
    CheckpointError,
    convert_official_state_dict,
    load_weights,
    save_weights,
    triu_pack,
    triu_unpack,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _bgr(h: int, w: int, seed: int) -> torch.Tensor:
    return seeded_pixels(1, 3, h, w, seed=seed)


def _outputs_equal(a, b, h: int = 24, w: int = 20) -> None:
    x, s = _bgr(h, w, 1), _bgr(24, 24, 2)
    with torch.inference_mode():
        ya = a.stylize(x, a.style_target(s))
        yb = b.stylize(x, b.style_target(s))
    torch.testing.assert_close(ya, yb, atol=1e-3, rtol=1e-4)


def test_official_layout_at_ngf128_loads_and_matches_its_source(tmp_path: Path) -> None:
    state = official_layout_state_dict(ngf=128, seed=3)
    running = [k for k in state if k.endswith((".running_mean", ".running_var"))]
    assert len(state) == 156 and len(running) == 64
    assert state["model1.0.conv2d.weight"].shape == (64, 3, 7, 7)
    assert state["ins.weight"].shape == (1, 512, 512)
    assert "model.1.weight" in state
    path = tmp_path / "21styles.model"
    torch.save(state, path)

    loaded = load_weights(path)
    assert loaded.layout == "official"
    assert loaded.net.ngf == 128 and loaded.presets == {}
    assert not loaded.net.training
    _outputs_equal(loaded.net, make_net(128, seed=3), h=16, w=16)


def test_official_layout_tiny_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "tiny.model"
    torch.save(official_layout_state_dict(ngf=8, seed=4), path)
    loaded = load_weights(path)
    assert loaded.net.ngf == 8
    for name, value in make_net(8, seed=4).state_dict().items():
        assert torch.equal(loaded.net.state_dict()[name], value), name


def test_official_layout_with_one_encoder_copy_is_accepted(tmp_path: Path) -> None:
    state = {k: v for k, v in official_layout_state_dict(8, seed=5).items()
             if not k.startswith("model.0.")}
    path = tmp_path / "one_copy.model"
    torch.save(state, path)
    _outputs_equal(load_weights(path).net, make_net(8, seed=5))


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = official_layout_state_dict(8)
    del state["model.2.conv_block.2.weight"]
    state["model.99.extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.model"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_weights(path)
    message = str(info.value)
    assert "missing keys: model.2.conv_block.2.weight" in message
    assert "unexpected keys: model.99.extra.weight" in message


def test_encoder_copies_that_disagree_are_an_error() -> None:
    state = official_layout_state_dict(8)
    state["model.0.0.conv2d.weight"] = state["model.0.0.conv2d.weight"] + 1.0
    with pytest.raises(CheckpointError, match=r"model1\.0\.conv2d\.weight.*model\.0\.0\.conv2d"):
        convert_official_state_dict(state)


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    state = official_layout_state_dict(8)
    key = "model.2.conv_block.2.weight"
    state[key] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "shape.model"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"shape mismatch: {key}"):
        load_weights(path)


def test_unrelated_files_are_checkpoint_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a torch file")
    with pytest.raises(CheckpointError, match="cannot read weights file"):
        load_weights(garbage)
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(CheckpointError, match="not an MSG-Net state dict"):
        load_weights(other)
    a_list = tmp_path / "list.pt"
    torch.save([1, 2, 3], a_list)
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_weights(a_list)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_weights(tmp_path / "absent.pt")


def test_our_format_roundtrip_with_presets(tmp_path: Path) -> None:
    path = make_tiny_weights(tmp_path / "ours.pt", seed=0, half=False)
    loaded = load_weights(path)
    assert loaded.layout == "ours"
    assert sorted(loaded.presets) == sorted(TINY_PRESETS)
    for gram in loaded.presets.values():
        assert gram.shape == (1, 32, 32) and gram.dtype == torch.float32
        torch.testing.assert_close(gram, gram.transpose(1, 2))
    assert loaded.metadata["source"].startswith("tests")
    _outputs_equal(loaded.net, make_net(8, seed=0))


def test_half_precision_file_stays_close(tmp_path: Path) -> None:
    full = load_weights(make_tiny_weights(tmp_path / "f32.pt", half=False))
    half = load_weights(make_tiny_weights(tmp_path / "f16.pt", half=True))
    for name, value in full.net.state_dict().items():
        torch.testing.assert_close(half.net.state_dict()[name], value, atol=2e-3, rtol=2e-3)


def test_save_weights_is_loadable_and_atomic(tmp_path: Path) -> None:
    net = make_net(8, seed=6)
    path = save_weights(tmp_path / "sub" / "w.pt", net, half=False)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    _outputs_equal(load_weights(path).net, net)


def test_triu_pack_roundtrip() -> None:
    a = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    sym = (a + a.T).unsqueeze(0)
    packed = triu_pack(sym)
    assert packed.shape == (15,)
    torch.testing.assert_close(triu_unpack(packed, 5), sym)

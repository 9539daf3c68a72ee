"""The Inspiration layer's opt-in pass-through, ``(W G)^T + k·diag(skip)``, with k = SKIP_SCALE
("fixed") or ``‖W G‖_F`` ("relative").

It must change nothing at zero (so trained weights resume unchanged), change the output once
it is not zero, reach every inference path the same way, and survive the weights file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from weights_factory import make_net, seeded_pixels

from msgnet.inference.variants import VARIANTS, build_variant
from msgnet.model.checkpoint import load_weights, save_weights
from msgnet.model.net import SKIP_SCALE, Net, inspiration_matrix, skip_mode
from msgnet.training.inspiration import inspiration_ranks, transmitted_share

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _with_skip(net: Net, value: float | None, mode: str = "fixed") -> Net:
    """A copy of ``net`` with a skip, at zero or at seeded values around ``value``."""
    twin = Net(ngf=net.ngf, inspiration_skip=mode).eval()
    state = net.state_dict()
    state["ins.skip"] = state["model.1.skip"] = torch.zeros(net.channels)
    twin.load_state_dict(state)
    if value is not None:
        with torch.no_grad():
            twin.ins.skip.copy_(value * (0.5 + seeded_pixels(net.channels, seed=5) / 255))
    return twin


@pytest.fixture(scope="module")
def base() -> Net:
    return make_net(8, seed=2)


@pytest.fixture(scope="module")
def gram(base: Net) -> torch.Tensor:
    with torch.inference_mode():
        return base.style_target(seeded_pixels(1, 3, 40, 40, seed=9))


def _out(net: Net, gram: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return net.stylize(seeded_pixels(1, 3, 48, 32, seed=4), gram)


@pytest.mark.parametrize("mode", ["fixed", "relative"])
def test_a_zero_skip_changes_nothing(base: Net, gram: torch.Tensor, mode: str) -> None:
    assert not base.inspiration_skip and base.inspiration_skip_mode is None
    assert torch.equal(_out(_with_skip(base, None, mode), gram), _out(base, gram))


def test_a_nonzero_skip_passes_the_features_through(base: Net, gram: torch.Tensor) -> None:
    net = _with_skip(base, 1.0)
    w, g, s = net.ins.weight[0].detach(), gram[0], net.ins.skip.detach()
    torch.testing.assert_close(inspiration_matrix(w, g, s), (w @ g).T + SKIP_SCALE * torch.diag(s))
    assert float((_out(net, gram) - _out(base, gram)).abs().max()) > 1.0  # grey levels


def test_a_relative_skip_scales_with_each_targets_matrix(base: Net, gram: torch.Tensor) -> None:
    net = _with_skip(base, 0.05, "relative")
    w, s = net.ins.weight[0].detach(), net.ins.skip.detach()
    grams = torch.cat([gram, 3 * gram])  # a batch of two targets, one 3× the other
    got = inspiration_matrix(w, grams, s, relative=True)
    for i in range(2):
        p = (w @ grams[i]).T
        torch.testing.assert_close(got[i], p + torch.linalg.matrix_norm(p) * torch.diag(s))
    # the same relative skip, whatever the scale of the style's Gram matrix
    torch.testing.assert_close(got[1], 3 * got[0])
    assert float((_out(net, gram) - _out(base, gram)).abs().max()) > 1.0


def test_unknown_skip_modes_are_refused() -> None:
    assert [skip_mode(v) for v in (False, None, True, "fixed", "relative")] == [
        None, None, "fixed", "fixed", "relative"]
    with pytest.raises(ValueError, match="unknown Inspiration skip"):
        Net(ngf=8, inspiration_skip="diagonal")


@pytest.mark.parametrize("mode", ["fixed", "relative"])
@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "compile"])
def test_every_inference_variant_applies_the_skip(base: Net, gram: torch.Tensor,
                                                  name: str, mode: str) -> None:
    net = _with_skip(base, 1.0 if mode == "fixed" else 0.05, mode)
    content = seeded_pixels(1, 3, 48, 32, seed=4)
    torch.testing.assert_close(build_variant(name, net)(content, gram), _out(net, gram),
                               atol=1e-2, rtol=0)


def test_the_weights_file_keeps_the_skip(base: Net, gram: torch.Tensor, tmp_path: Path) -> None:
    net = _with_skip(base, 1.0)
    path = save_weights(tmp_path / "w.pt", net, {"p": gram}, half=False)
    raw = torch.load(path, weights_only=False)
    assert raw["inspiration_skip"] is True
    assert [k for k in raw["state_dict"] if "skip" in k] == ["ins.skip"]  # one copy on disk
    loaded = load_weights(path).net
    assert loaded.inspiration_skip and torch.equal(loaded.ins.skip, net.ins.skip)
    torch.testing.assert_close(_out(loaded, gram), _out(net, gram))
    assert raw["format_version"] == 1  # readable by code that predates the relative skip
    plain = load_weights(save_weights(tmp_path / "plain.pt", base, {"p": gram}))
    assert not plain.net.inspiration_skip


def test_the_weights_file_keeps_a_relative_skip(base: Net, gram: torch.Tensor,
                                                 tmp_path: Path) -> None:
    net = _with_skip(base, 0.05, "relative")
    path = save_weights(tmp_path / "w.pt", net, {"p": gram}, half=False)
    raw = torch.load(path, weights_only=True)
    # version 2: code that knows only the fixed skip refuses the file instead of misreading it
    assert raw["inspiration_skip_mode"] == "relative" and raw["format_version"] == 2
    loaded = load_weights(path).net
    assert loaded.inspiration_skip_mode == "relative"
    torch.testing.assert_close(_out(loaded, gram), _out(net, gram))
    raw.pop("inspiration_skip_mode")  # a file from before the modes: a fixed skip
    torch.save(raw, tmp_path / "old.pt")
    assert load_weights(tmp_path / "old.pt").net.inspiration_skip_mode == "fixed"


def test_the_rank_diagnostic_counts_the_skip(base: Net, gram: torch.Tensor) -> None:
    plain = inspiration_ranks(base, {"p": gram})["p_rank"]
    assert inspiration_ranks(_with_skip(base, None), {"p": gram})["p_rank"] == plain
    assert inspiration_ranks(_with_skip(base, 100.0), {"p": gram})["p_rank"] > plain


def test_transmitted_share_is_one_for_the_identity_and_small_for_a_projection() -> None:
    feats = seeded_pixels(16, 200, seed=1)
    assert transmitted_share(torch.eye(16), feats) == pytest.approx(1.0)
    one_direction = torch.zeros(16, 16)
    one_direction[0, 0] = 5.0
    assert transmitted_share(one_direction, feats) == pytest.approx(1 / 16, rel=0.5)


def test_transmission_script_reports_each_weights_file(tmp_path: Path) -> None:
    from PIL import Image
    from weights_factory import TINY_PRESETS, make_tiny_weights

    from workbench import inspiration_transmission as script

    for i in range(2):
        arr = (seeded_pixels(40, 48, 3, seed=i)).byte().numpy()
        Image.fromarray(arr, "RGB").save(tmp_path / f"val_{i}.png")
    weights = make_tiny_weights(tmp_path / "w.pt")
    out = tmp_path / "t.json"
    assert script.main([str(weights), "--content-dir", str(tmp_path), "--size", "32",
                        "--styles", *TINY_PRESETS[:2], "-o", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert 0 < row["transmitted_share_median"] <= 1 and row["inspiration_skip"] is False
    assert row["relative_singular_values"]["candy"][0] == 1.0
    with pytest.raises(SystemExit):
        script.main([str(weights), "--content-dir", str(tmp_path), "--content-prefix", "nope"])

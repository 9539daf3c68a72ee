"""msgnet.model.net: shapes, determinism, Gram matrices and per-item targets (tiny ngf=8 nets)."""

from __future__ import annotations

import pytest
import torch
from weights_factory import make_net, seeded_pixels

from msgnet.model.net import Net, gram_matrix, inspire

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def net() -> Net:
    return make_net(8, seed=0)


def _rand_bgr(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    return seeded_pixels(b, 3, h, w, seed=seed)


def test_state_dict_layout_has_the_authors_names(net: Net) -> None:
    keys = net.state_dict().keys()
    assert "model1.0.conv2d.weight" in keys and "model.0.0.conv2d.weight" in keys
    assert "ins.weight" in keys and "model.1.weight" in keys
    assert net.state_dict()["model1.0.conv2d.weight"].shape == (64, 3, 7, 7)
    assert net.ins.weight.shape == (1, 32, 32)  # ngf * 4 channels
    assert net.model[0] is net.model1  # one shared encoder module


@pytest.mark.parametrize("h,w", [(32, 32), (48, 24), (20, 36)])
def test_output_has_input_shape_for_multiples_of_four(net: Net, h: int, w: int) -> None:
    with torch.inference_mode():
        target = net.style_target(_rand_bgr(1, 24, 24, seed=1))
        out = net.stylize(_rand_bgr(2, h, w, seed=2), target)
    assert out.shape == (2, 3, h, w)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("h,w", [(17, 23), (31, 18), (21, 21)])
def test_odd_sizes_come_back_rounded_up_to_multiples_of_four(net: Net, h: int, w: int) -> None:
    """Why the stylizer pads: the raw net rounds odd sizes up (two stride-2 stages)."""
    with torch.inference_mode():
        target = net.style_target(_rand_bgr(1, 19, 27, seed=1))  # odd style sizes are fine
        out = net.stylize(_rand_bgr(1, h, w, seed=2), target)
    assert out.shape == (1, 3, -(-h // 4) * 4, -(-w // 4) * 4)


def test_style_target_is_a_symmetric_gram_matrix(net: Net) -> None:
    with torch.inference_mode():
        g = net.style_target(_rand_bgr(2, 24, 32, seed=3))
    assert g.shape == (2, net.channels, net.channels)
    torch.testing.assert_close(g, g.transpose(1, 2))
    assert (torch.diagonal(g, dim1=1, dim2=2) >= 0).all()


def test_gram_matrix_matches_its_definition() -> None:
    f = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    flat = f.reshape(2, 4, 15)
    expected = torch.stack([flat[i] @ flat[i].T for i in range(2)]) / (4 * 3 * 5)
    torch.testing.assert_close(gram_matrix(f), expected)


def test_forward_is_deterministic(net: Net) -> None:
    x, s = _rand_bgr(1, 24, 28, seed=4), _rand_bgr(1, 24, 24, seed=5)
    twin = make_net(8, seed=0)
    with torch.inference_mode():
        a = net.stylize(x, net.style_target(s))
        b = net.stylize(x, net.style_target(s))
        c = twin.stylize(x, twin.style_target(s))
    assert torch.equal(a, b)
    assert torch.equal(a, c)


def test_different_styles_give_different_outputs(net: Net) -> None:
    x = _rand_bgr(1, 24, 24, seed=6)
    with torch.inference_mode():
        a = net.stylize(x, net.style_target(_rand_bgr(1, 24, 24, seed=7)))
        b = net.stylize(x, net.style_target(_rand_bgr(1, 24, 24, seed=8) * 0.3))
    assert (a - b).abs().max() > 1e-3


def test_per_item_targets_equal_one_at_a_time(net: Net) -> None:
    x = _rand_bgr(2, 24, 24, seed=9)
    with torch.inference_mode():
        g = net.style_target(torch.cat([_rand_bgr(1, 24, 24, 10), _rand_bgr(1, 24, 24, 11)]))
        both = net.stylize(x, g)
        first = net.stylize(x[:1], g[:1])
        second = net.stylize(x[1:], g[1:])
    torch.testing.assert_close(both, torch.cat([first, second]), atol=1e-3, rtol=1e-4)


def test_inspire_broadcasts_a_single_target() -> None:
    gen = torch.Generator().manual_seed(0)
    x, w, g = (torch.randn(3, 4, 2, 2, generator=gen), torch.randn(1, 4, 4, generator=gen),
               torch.randn(1, 4, 4, generator=gen))
    torch.testing.assert_close(inspire(x, w, g), inspire(x, w, g.expand(3, 4, 4)))


def test_forward_without_target_explains_itself() -> None:
    fresh = Net(ngf=8).eval()
    with pytest.raises(RuntimeError, match="set_target"), torch.inference_mode():
        fresh(_rand_bgr(1, 16, 16, seed=0))

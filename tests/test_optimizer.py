"""msgnet.training.optimizer: the Inspiration weight's own learning rate, and trainstates of either
optimizer layout resuming into the other."""

from __future__ import annotations

import torch

from msgnet.model.net import Net
from msgnet.training.optimizer import load_optimizer_state, make_optimizer, warmup_lrs


def _step(net: Net, optimizer: torch.optim.Optimizer, seed: int) -> None:
    torch.manual_seed(seed)
    net.set_target(torch.rand(1, net.channels, net.channels))
    optimizer.zero_grad()
    with torch.enable_grad():  # another test's code may have switched grad mode off
        net(torch.rand(1, 3, 32, 32) * 255).square().mean().backward()
    optimizer.step()


def _net() -> Net:
    torch.manual_seed(0)
    net = Net(ngf=8)
    with torch.no_grad():
        net.ins.weight.fill_(0).add_(1000 * torch.eye(net.channels))  # as after the re-init
    return net


def test_the_inspiration_weight_gets_its_own_learning_rate():
    plain, split = _net(), _net()
    opt_plain = make_optimizer(plain, 1e-3)
    opt_split = make_optimizer(split, 1e-3, inspiration_lr=0.5)
    assert [g["lr"] for g in opt_plain.param_groups] == [1e-3]
    assert [g["lr"] for g in opt_split.param_groups] == [1e-3, 0.5]
    assert opt_split.param_groups[1]["params"] == [split.ins.weight]
    w0 = plain.ins.weight.detach().clone()
    _step(plain, opt_plain, 1)
    _step(split, opt_split, 1)
    moved_plain = float((plain.ins.weight.detach() - w0).abs().max())
    moved_split = float((split.ins.weight.detach() - w0).abs().max())
    assert moved_plain <= 1.1e-3 < 0.4 < moved_split <= 0.55  # Adam: ~lr per entry
    # everything else moved the same
    first = next(iter(plain.parameters()))
    torch.testing.assert_close(first, next(iter(split.parameters())))


def test_a_one_group_trainstate_resumes_into_two_groups_and_back():
    net = _net()
    single = make_optimizer(net, 1e-3)
    for seed in range(2):
        _step(net, single, seed)
    saved = single.state_dict()
    moments = {id(p): single.state[p]["exp_avg_sq"].clone() for p in net.parameters()}

    split = make_optimizer(net, 2e-3, inspiration_lr=0.5)
    load_optimizer_state(split, saved, net, 2e-3, inspiration_lr=0.5)
    assert [g["lr"] for g in split.param_groups] == [2e-3, 0.5]  # from the configuration
    for p in net.parameters():  # each parameter keeps its own Adam moments and step count
        torch.testing.assert_close(split.state[p]["exp_avg_sq"], moments[id(p)])
        assert float(split.state[p]["step"]) == 2
    _step(net, split, 3)

    back = make_optimizer(net, 1e-3)
    load_optimizer_state(back, split.state_dict(), net, 1e-3)
    assert [g["lr"] for g in back.param_groups] == [1e-3]
    assert all(float(back.state[p]["step"]) == 3 for p in net.parameters())
    _step(net, back, 4)  # and it still steps


def test_warmup_rises_linearly_to_the_configured_rates():
    assert warmup_lrs(1e-3, None, 0, 4) == [2.5e-4]
    assert warmup_lrs(1e-3, 0.5, 1, 4) == [5e-4, 0.25]
    assert warmup_lrs(1e-3, None, 3, 4) == warmup_lrs(1e-3, None, 99, 4) == [1e-3]
    assert warmup_lrs(1e-3, None, 0, 0) == [1e-3]  # off: the recipe

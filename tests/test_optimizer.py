"""msgnet.training.optimizer: a resumed optimizer keeps its moments and takes the configured
learning rate; the warm-up."""

from __future__ import annotations

import torch

from msgnet.model.net import Net
from msgnet.training.optimizer import load_optimizer_state, make_optimizer, warmup_lr


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


def test_resume_keeps_the_moments_and_takes_the_configured_rate():
    net = _net()
    first = make_optimizer(net, 1e-3)
    for seed in range(2):
        _step(net, first, seed)
    moments = {id(p): first.state[p]["exp_avg_sq"].clone() for p in net.parameters()}
    resumed = make_optimizer(net, 2e-3)
    load_optimizer_state(resumed, first.state_dict(), 2e-3)
    assert [g["lr"] for g in resumed.param_groups] == [2e-3]  # from the configuration
    for p in net.parameters():  # each parameter keeps its own Adam moments and step count
        torch.testing.assert_close(resumed.state[p]["exp_avg_sq"], moments[id(p)])
        assert float(resumed.state[p]["step"]) == 2
    _step(net, resumed, 3)  # and it still steps


def test_warmup_rises_linearly_to_the_configured_rate():
    assert warmup_lr(1e-3, 0, 4) == 2.5e-4
    assert warmup_lr(1e-3, 1, 4) == 5e-4
    assert warmup_lr(1e-3, 3, 4) == warmup_lr(1e-3, 99, 4) == 1e-3
    assert warmup_lr(1e-3, 0, 0) == 1e-3  # off: the recipe

"""Optimizers by name, their torch arguments from config, LR scaling and bad values."""

import pytest
import torch
from torch import nn

from recipe.errors import ConfigError
from recipe.optim import OPTIMIZERS, OptimizerSpec, build_optimizer, resolve_lr


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_name_builds_its_torch_class(name):
    optimizer = build_optimizer(nn.Linear(4, 2), OptimizerSpec(name, lr=0.01, weight_decay=0.1))
    assert type(optimizer) is OPTIMIZERS[name]
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.1, 0.0}


def test_torch_arguments_reach_the_optimizer():
    sgd = build_optimizer(nn.Linear(4, 2), OptimizerSpec("sgd", lr=0.1, momentum=0.8, nesterov=True))
    assert sgd.defaults["momentum"] == 0.8 and sgd.defaults["nesterov"] is True
    adamw = build_optimizer(nn.Linear(4, 2), OptimizerSpec("adamw", lr=3e-4, betas=[0.8, 0.99], eps=1e-6))
    assert adamw.defaults["betas"] == (0.8, 0.99) and adamw.defaults["eps"] == 1e-6


@pytest.mark.parametrize("rule, factor", [("linear", 4.0), ("sqrt", 2.0), (None, 1.0)])
def test_lr_scaling_with_global_batch(rule, factor):
    spec = OptimizerSpec("sgd", lr=0.1, lr_scaling=rule, base_batch_size=64)
    optimizer = build_optimizer(nn.Linear(4, 2), spec, resolve_lr(spec, global_batch_size=256).peak)
    assert optimizer.defaults["lr"] == pytest.approx(0.1 * factor)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1 * factor] * 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"name": "lamb", "lr": 1e-3},
            r"optimizer.name='lamb': choose one of \['adam', 'adamw', 'rmsprop', 'sgd'\]",
        ),
        ({"name": "adamw", "lr": 0}, "optimizer.lr=0: must be a finite number > 0"),
        ({"name": "adamw", "lr": -1e-3}, "optimizer.lr=-0.001"),
        (
            {"name": "adamw", "lr": 1e-3, "momentum": 0.9},
            "optimizer.momentum=0.9: not an argument of AdamW; allowed:",
        ),
        ({"name": "sgd", "lr": 0.1, "momentum": -0.5}, r"optimizer \(sgd\): Invalid momentum value: -0.5"),
        ({"name": "sgd", "lr": 0.1, "nesterov": True}, "Nesterov momentum requires a momentum"),
        ({"name": "adamw", "lr": 1e-3, "weight_decay": -1}, "optimizer.weight_decay=-1: must be >= 0"),
        ({"name": "adamw", "lr": 1e-3, "lr_scaling": "cubic"}, "optimizer.lr_scaling='cubic'"),
    ],
)
def test_bad_values_fail_at_config_time(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        OptimizerSpec(**kwargs)


def test_all_frozen_is_an_error():
    spec = OptimizerSpec("adamw", lr=1e-3, param_groups=[{"match": "*", "lr_mult": 0}])
    with pytest.raises(ConfigError, match="every parameter is frozen"):
        build_optimizer(nn.Linear(4, 2), spec)


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With a zero gradient, AdamW still shrinks decayed weights by lr * wd and leaves no-decay ones alone."""
    model = nn.Linear(2, 2)
    before = model.weight.detach().clone(), model.bias.detach().clone()
    optimizer = build_optimizer(model, OptimizerSpec("adamw", lr=0.1, weight_decay=0.5))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    assert torch.allclose(model.weight, before[0] * (1 - 0.1 * 0.5))
    assert torch.equal(model.bias, before[1])

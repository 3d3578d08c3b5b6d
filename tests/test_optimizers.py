"""Optimizers by name, their torch arguments from config, LR scaling and bad values."""

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from recipe.cli.config import compose_config
from recipe.errors import ConfigError
from recipe.optim import OPTIMIZERS, OptimizerSpec, build_optimizer, resolve_lr


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_name_builds_its_torch_class(name):
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))  # muon needs a hidden matrix
    optimizer = build_optimizer(model, OptimizerSpec(name, lr=0.01, weight_decay=0.1))
    assert type(optimizer) is OPTIMIZERS[name]
    decays = {0.1, 0.01, 0.0} if name == "muon" else {0.1, 0.0}  # muon: AdamW's own decay for the others
    assert {g["weight_decay"] for g in optimizer.param_groups} == decays


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
            {"name": "lars", "lr": 1e-3},
            r"optimizer.name='lars': choose one of \['adafactor', 'adam', 'adamw', 'adopt', 'lamb', 'lion',",
        ),
        ({"name": "adamw", "lr": 0}, "optimizer.lr=0: must be a finite number > 0"),
        ({"name": "adamw", "lr": -1e-3}, "optimizer.lr=-0.001"),
        (
            {"name": "adamw", "lr": 1e-3, "momentum": 0.9},
            "optimizer.momentum=0.9: not an argument of AdamW; allowed:",
        ),
        ({"name": "adamw", "lr": 1e-3, "weight_decay": -1}, "optimizer.weight_decay=-1: must be >= 0"),
        ({"name": "adamw", "lr": 1e-3, "lr_scaling": "cubic"}, "optimizer.lr_scaling='cubic'"),
        ({"name": "adamw", "lr": 1e-3, "betas": [0.9]}, r"optimizer.betas=\[0.9\]: must be a list of 2 numbers, e.g. "),
        ({"name": "lion", "lr": 1e-4, "betas": 0.9}, r"optimizer.betas=0.9: must be a list of 2 numbers, e.g. \[0.9, "),
        ({"name": "sam", "lr": 1e-3, "betas": [0.9, "a"]}, r"optimizer.betas=\[0.9, 'a'\]: must be a list of 2"),
        ({"name": "muon", "lr": 0.02, "adamw_betas": [0.9, 0.9, 0.9]}, r"optimizer.adamw_betas=\[0.9, 0.9, 0.9\]: "),
    ],
)
def test_bad_values_fail_at_config_time(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        OptimizerSpec(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"momentum": -0.5}, r"optimizer \(sgd\): Invalid momentum value: -0.5"),
        ({"nesterov": True}, r"optimizer \(sgd\): Nesterov momentum requires a momentum"),
    ],
)
def test_values_torch_owns_are_one_config_error_when_built(kwargs, message):
    spec = OptimizerSpec("sgd", lr=0.1, **kwargs)  # the names are right: accepted until torch sees the values
    with pytest.raises(ConfigError, match=message):
        build_optimizer(nn.Linear(4, 2), spec)


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


NEW = {  # each yaml at an LR that moves a tiny problem within 60 full-batch steps
    "nadam": 1e-2,
    "radam": 3e-2,
    "adafactor": 5e-2,
    "lion": 3e-3,
    "lamb": 3e-2,
    "schedulefree_adamw": 1e-2,
    "schedulefree_sgd": 0.5,
    "muon": 0.02,
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_each_new_yaml_trains_a_tiny_problem(name):
    torch.manual_seed(0)
    x = torch.randn(128, 8)
    y = (x @ torch.randn(8, 3)).argmax(1)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    extra = ["optimizer.adamw_lr=1e-2"] if name == "muon" else []
    cfg = compose_config(f"optimizer={name}", f"optimizer.lr={NEW[name]}", *extra)
    optimizer = build_optimizer(model, instantiate(cfg.optimizer))
    if hasattr(optimizer, "train"):
        optimizer.train()  # schedule-free: the training-mode weights
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def one_step(name: str, x: torch.Tensor, g: torch.Tensor, **kwargs) -> torch.Tensor:
    """The tensor after one step from ``x`` with gradient ``g``."""
    p = nn.Parameter(x.clone())
    spec = OptimizerSpec(name, exclude_bias_and_norm=False, **kwargs)
    optimizer = spec.cls([p], lr=spec.lr, weight_decay=spec.weight_decay, **spec.torch_kwargs)
    p.grad = g.clone()
    optimizer.step()
    return p.detach()


X = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
G = torch.tensor([[0.3, -0.2, 0.1], [-0.4, 0.05, 0.6]])


def test_lion_step_is_the_sign_of_the_interpolated_momentum_with_decoupled_decay():
    lr, wd = 0.01, 0.5
    expected = X * (1 - lr * wd) - lr * torch.sign(0.1 * G)  # m0 = 0: sign(beta1 m + (1 - beta1) g)
    assert torch.allclose(one_step("lion", X, G, lr=lr, weight_decay=wd), expected)


def test_lamb_step_is_the_trust_ratio_times_the_adam_update_plus_decay():
    lr, wd, eps = 0.01, 0.1, 1e-6
    r = 0.1 * G / ((0.001 * G**2).sqrt() + eps) + wd * X  # no bias correction; the ratio cancels it
    expected = X - lr * X.norm() / r.norm() * r
    got = one_step("lamb", X, G, lr=lr, weight_decay=wd, eps=eps, weight_decouple=False)
    assert torch.allclose(got, expected, atol=1e-6)


def test_radam_first_steps_are_sgd_with_momentum_until_the_variance_is_tractable():
    assert torch.allclose(one_step("radam", X, G, lr=0.01), X - 0.01 * G)  # bias-corrected m1 = g


def test_nadam_first_step():
    lr, b1, b2, psi, eps = 0.01, 0.9, 0.999, 4e-3, 1e-8
    mu1, mu2 = b1 * (1 - 0.5 * 0.96**psi), b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    denom = ((1 - b2) * G**2 / (1 - b2)).sqrt() + eps
    expected = X - lr * ((1 - mu1) / (1 - mu1) * G + mu2 / (1 - mu1 * mu2) * (1 - b1) * G) / denom
    assert torch.allclose(one_step("nadam", X, G, lr=lr), expected, atol=1e-6)


def test_adafactor_keeps_a_row_and_a_column_second_moment_for_a_matrix():
    p = nn.Parameter(torch.randn(6, 4))
    optimizer = torch.optim.Adafactor([p], lr=0.01)
    p.grad = torch.randn(6, 4)
    optimizer.step()
    state = optimizer.state[p]
    assert state["row_var"].numel() == 6 and state["col_var"].numel() == 4  # rows + columns, not rows x columns


def test_schedule_free_sgd_evaluates_the_average_of_its_iterates():
    """Defazio et al. 2024: y = (1 - b) z + b x; z -= lr grad(y); x = (1 - c) x + c z with c = 1 / t."""
    lr, beta, a = 0.1, 0.9, torch.tensor([1.0, 4.0])
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = OPTIMIZERS["schedulefree_sgd"]([p], lr=lr, momentum=beta)
    x = z = p.detach().clone()
    optimizer.train()
    for t in range(1, 6):
        y = (1 - beta) * z + beta * x
        assert torch.allclose(p.detach(), y)
        p.grad = a * p.detach()  # the gradient of sum(a x^2) / 2
        optimizer.step()
        z = z - lr * a * y
        x = (1 - 1 / t) * x + z / t
    optimizer.eval()
    assert torch.allclose(p.detach(), x)


def test_muon_step_is_the_orthogonalized_momentum():
    torch.manual_seed(0)
    x, g = torch.randn(8, 8), torch.randn(8, 8)
    update = (x - one_step("muon", x, g, lr=0.01, weight_decay=0.0)) / 0.01
    u, _, vh = torch.linalg.svd(g)
    cosine = (update * (u @ vh)).sum() / (update.norm() * (u @ vh).norm())
    assert cosine > 0.95  # Newton-Schulz approximates U V^T, not exactly
    assert torch.linalg.svdvals(update).max() < 1.3

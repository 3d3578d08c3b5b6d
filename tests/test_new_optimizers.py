"""Shampoo, SOAP, Prodigy and ADOPT step as their papers' update rules (each written here from the paper's equations)
and their yaml defaults learn the digits."""

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from recipe.cli.config import compose_config
from recipe.optim import OptimizerSpec, build_optimizer
from train import train

torch.manual_seed(0)
X = torch.randn(4, 4)
GRADS = [torch.randn(4, 4) for _ in range(3)]


def steps(name: str, **kwargs) -> tuple[torch.Tensor, torch.optim.Optimizer]:
    """The 4x4 tensor ``X`` after one step per gradient of ``GRADS``, and the optimizer that took them."""
    p = nn.Parameter(X.clone())
    spec = OptimizerSpec(name, exclude_bias_and_norm=False, **kwargs)
    optimizer = spec.cls([p], lr=spec.lr, weight_decay=spec.weight_decay, **spec.torch_kwargs)
    for g in GRADS:
        p.grad = g.clone()
        optimizer.step()
    return p.detach(), optimizer


def matrix_power(a: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(a.double())
    return (vectors * values.clamp_min(0) ** power) @ vectors.T


def test_adopt_normalises_by_the_previous_second_moment_then_takes_momentum():
    """Taniguchi et al. 2024, Algorithm 2: v0 = g0^2; m = b1 m + (1 - b1) clip(g / max(sqrt(v), eps), t^0.25);
    x -= lr m; then v = b2 v + (1 - b2) g^2: v never holds the gradient it normalises."""
    lr, b1, b2, eps = 0.1, 0.9, 0.99, 1e-6
    x, m, v = X.clone(), torch.zeros_like(X), GRADS[0] ** 2  # the first step only fills v
    for t, g in enumerate(GRADS[1:], start=2):
        m = b1 * m + (1 - b1) * (g / v.sqrt().clamp_min(eps)).clamp(-(t**0.25), t**0.25)
        x = x - lr * m
        v = b2 * v + (1 - b2) * g**2
    got, _ = steps("adopt", lr=lr, betas=[b1, b2], eps=eps)
    assert torch.allclose(got, x, atol=1e-6)


def test_prodigy_estimates_its_step_size_from_the_distance_travelled():
    """Mishchenko & Defazio 2024, Algorithm 4 (Adam version): with d_k the estimate and g the gradient at x_k,
    m = b1 m + (1-b1) d g; v = b2 v + (1-b2) d^2 g^2; r = sqrt(b2) r + (1-sqrt(b2)) lr d^2 <g, x0 - x>;
    s = sqrt(b2) s + (1-sqrt(b2)) lr d^2 g; d = max(d, r / |s|_1); x -= lr d m / (sqrt(v) + d eps).
    The gradient is that of |x - 3|^2 / 2, so the distance to travel is known to be large."""
    lr, b1, b2, d, eps = 1.0, 0.9, 0.999, 1e-3, 1e-8
    b3 = b2**0.5
    x, m, v, r, s = X.clone(), torch.zeros_like(X), torch.zeros_like(X), 0.0, torch.zeros_like(X)
    for _ in range(5):
        g = x - 3
        m, v = b1 * m + (1 - b1) * d * g, b2 * v + (1 - b2) * d**2 * g**2
        r = b3 * r + (1 - b3) * lr * d**2 * float((g * (X - x)).sum())
        s = b3 * s + (1 - b3) * lr * d**2 * g
        step = lr * d
        d = max(d, r / float(s.abs().sum()))
        x = x - step * m / (v.sqrt() + d * eps)
    p = nn.Parameter(X.clone())
    spec = OptimizerSpec("prodigy", lr=lr, betas=[b1, b2], d0=1e-3, eps=eps, safeguard_warmup=False)
    optimizer = spec.cls([p], lr=spec.lr, **spec.torch_kwargs)
    for _ in range(5):
        p.grad = p.detach() - 3
        optimizer.step()
    assert d > 1e-2  # the estimate grew tenfold: the test sees the rule at work
    assert optimizer.param_groups[0]["d"] == pytest.approx(d, rel=1e-4)
    assert torch.allclose(p.detach(), x, atol=1e-6)


def test_soap_runs_adam_in_the_eigenbasis_of_shampoos_preconditioner():
    """Vyas et al. 2024, Algorithm 3: the first gradient only fills L = G G^T and R = G^T G (decay shampoo_beta) and
    their eigenvectors Q_L, Q_R; each later step: M = b1 M + (1-b1) G in the weights' basis, V = b2 V + (1-b2) G'^2
    with G' = Q_L^T G Q_R, x -= lr_t Q_L (Q_L^T M Q_R / (sqrt(V) + eps)) Q_R^T, lr_t bias-corrected as Adam's."""
    lr, b1, b2, sb, eps = 0.01, 0.9, 0.95, 0.8, 1e-8
    left, right = (1 - sb) * GRADS[0] @ GRADS[0].T, (1 - sb) * GRADS[0].T @ GRADS[0]
    q_left, q_right = (torch.linalg.eigh(a.double())[1].float() for a in (left, right))
    x, m, v = X.clone(), torch.zeros_like(X), torch.zeros_like(X)
    for t, g in enumerate(GRADS[1:], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (q_left.T @ g @ q_right) ** 2
        step = lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
        x = x - step * q_left @ ((q_left.T @ m @ q_right) / (v.sqrt() + eps)) @ q_right.T
    kwargs = {"betas": [b1, b2], "shampoo_beta": sb, "eps": eps, "precondition_frequency": 100}
    got, _ = steps("soap", lr=lr, weight_decay=0.0, **kwargs)
    assert torch.allclose(got, x, atol=1e-5)


def test_shampoo_preconditions_with_the_inverse_fourth_roots_of_the_row_and_column_statistics():
    """Gupta et al. 2018, Algorithm 1: L = eps I + sum G G^T, R = eps I + sum G^T G, x -= lr L^(-1/4) G R^(-1/4)."""
    lr, eps = 0.01, 1e-6
    x, left, right = X.clone().double(), eps * torch.eye(4).double(), eps * torch.eye(4).double()
    for g in GRADS:
        g = g.double()
        left, right = left + g @ g.T, right + g.T @ g
        x = x - lr * matrix_power(left, -0.25) @ g @ matrix_power(right, -0.25)
    got, _ = steps("shampoo", lr=lr, weight_decay=0.0, preconditioning_compute_steps=1, matrix_eps=eps)
    assert torch.allclose(got.double(), x, atol=1e-5)


@pytest.mark.parametrize("name", ["adopt", "prodigy", "shampoo", "soap"])
def test_each_yaml_default_learns_the_digits(make_cfg, name):
    """The full run (30 epochs, docs/optimizers.md) reaches 0.95; 3 epochs of the same recipe clear 0.85."""
    cfg = make_cfg(f"optimizer={name}", "trainer.max_epochs=3", "logger=csv", "threads=1")
    metrics = train(cfg)
    assert metrics["test/acc"] >= 0.85


def test_the_yamls_name_their_classes():
    classes = {
        n: type(build_optimizer(nn.Linear(4, 4), instantiate(compose_config(f"optimizer={n}").optimizer)))
        for n in ("adopt", "prodigy", "shampoo", "soap")
    }
    assert {n: c.__name__ for n, c in classes.items()} == {
        "adopt": "ADOPT",
        "prodigy": "Prodigy",
        "shampoo": "Shampoo",
        "soap": "SOAP",
    }

"""SAM: the paper's two-pass update through a closure, in Lightning's loop, and what it rejects."""

import copy

import lightning as L
import pytest
import torch
from conftest import NO_LOGGER
from hydra.utils import instantiate
from torch import nn

from recipe.cli.config import compose_config
from recipe.errors import ConfigError
from recipe.optim import OptimizerSpec, build_optimizer
from recipe.validation.checks import check_train_config
from train import train

A = torch.tensor([1.0, 4.0, 0.5])
B = torch.tensor([0.3, -1.0, 0.2])
W = torch.tensor([0.7, -0.2, 1.5])


def grad(w: torch.Tensor) -> torch.Tensor:
    """Gradient of the quadratic sum(A w^2) / 2 + B w."""
    return A * w + B


def sam_step(w: torch.Tensor, **kwargs) -> tuple[torch.Tensor, int]:
    """``w`` after one step of SAM over SGD (lr 0.1) on the quadratic, and the number of closure calls."""
    p = nn.Parameter(w.clone())
    spec = OptimizerSpec("sam", lr=0.1, base="sgd", exclude_bias_and_norm=False, **kwargs)
    optimizer = spec.cls([p], lr=spec.lr, weight_decay=spec.weight_decay, **spec.torch_kwargs)
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        optimizer.zero_grad()
        loss = (A * p**2).sum() / 2 + (B * p).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return p.detach(), len(calls)


def test_sam_steps_with_the_gradient_at_the_worst_point_within_rho():
    """Foret et al. 2021, eq. 2-3: e = rho g / ||g||, then w - lr grad(w + e)."""
    g = grad(W)
    expected = W - 0.1 * grad(W + 0.05 * g / g.norm())
    after, calls = sam_step(W, rho=0.05)
    assert torch.allclose(after, expected) and calls == 2
    assert not torch.allclose(after, W - 0.1 * g)  # plain SGD would differ


def test_adaptive_sam_scales_the_perturbation_by_the_weights():
    """ASAM (Kwon et al. 2021): e = rho w^2 g / || |w| g ||."""
    g = grad(W)
    expected = W - 0.1 * grad(W + 0.5 * W**2 * g / (W.abs() * g).norm())
    assert torch.allclose(sam_step(W, rho=0.5, adaptive=True)[0], expected)


def test_sam_wraps_the_base_with_its_arguments():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    optimizer = build_optimizer(model, OptimizerSpec("sam", lr=0.05, weight_decay=0.01, base="sgd", momentum=0.9))
    assert type(optimizer.base_optimizer) is torch.optim.SGD
    assert optimizer.base_optimizer.param_groups is optimizer.param_groups  # schedules and the LR monitor see both
    assert {g["momentum"] for g in optimizer.param_groups} == {0.9}
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.01, 0.0}  # biases: no decay


class CountClosures(L.Callback):
    """Lightning calls this hook after each closure call, before it clips the gradients."""

    def __init__(self) -> None:
        self.calls = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls += 1


def test_sam_trains_through_lightning_with_two_closures_per_step_and_clipping(make_cfg):
    cfg = make_cfg("optimizer=sam", "trainer.gradient_clip_val=1.0", *NO_LOGGER, "test=false")
    counter = CountClosures()
    metrics = train(cfg, extra_callbacks=[counter])
    assert counter.calls == 2 * 8  # 2 epochs x 4 batches
    assert metrics["val/acc"] > 0.2  # 10 classes: above chance


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.precision=16-mixed"], "trainer.precision='16-mixed': optimizer=sam makes two passes"),
        (["trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches=2: must be 1 with optimizer=sam"),
        (["optimizer.base=muon"], "optimizer.base='muon': the optimizer SAM wraps"),
        (["optimizer.base=sgd"], "optimizer.amsgrad=False: not an argument of SAM"),  # adamw.yaml's keys
    ],
)
def test_what_sam_cannot_do_is_one_line(make_cfg, overrides, message):
    cfg = make_cfg("optimizer=sam", *NO_LOGGER, *overrides)
    with pytest.raises(ConfigError, match=message):  # the checks, then the build, as the entry point
        check_train_config(cfg)
        train(cfg)


def test_a_step_without_closure_says_which_precision_to_use():
    spec = instantiate(compose_config("optimizer=sam").optimizer)
    optimizer = build_optimizer(nn.Linear(2, 2), spec)
    with pytest.raises(ConfigError, match=r"set trainer\.precision to bf16-mixed or 32-true"):
        optimizer.step()


def test_a_reloaded_sam_continues_bit_for_bit():
    """The checkpoint carries the base optimizer's state (AdamW's moments), shared with SAM's."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    models = [nn.Linear(4, 2), nn.Linear(4, 2)]
    models[1].load_state_dict(models[0].state_dict())
    spec = instantiate(compose_config("optimizer=sam").optimizer)
    first = build_optimizer(models[0], spec)

    def closure_for(model: nn.Module, optimizer: torch.optim.Optimizer):
        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        return closure

    for _ in range(3):
        first.step(closure_for(models[0], first))
    models[1].load_state_dict(models[0].state_dict())
    second = build_optimizer(models[1], spec)
    second.load_state_dict(copy.deepcopy(first.state_dict()))  # as a checkpoint file would: no shared tensors
    assert second.base_optimizer.state[models[1].weight]["exp_avg"].abs().sum() > 0
    for model, optimizer in zip(models, (first, second), strict=True):
        optimizer.step(closure_for(model, optimizer))
    assert torch.equal(models[0].weight, models[1].weight)

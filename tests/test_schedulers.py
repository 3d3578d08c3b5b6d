"""Schedulers as the optimizer sees them: the LR in the param groups after k steps, and bad specs."""

import math
from collections.abc import Callable

import pytest
import torch
from conftest import NO_LOGGER, RecordLR
from torch import nn

from recipe.errors import ConfigError
from recipe.optim import OPTIMIZERS, SCHEDULERS, OptimizerSpec, SchedulerSpec, build_optimizer, build_scheduler
from recipe.optim.schedulers import RunLength
from train import train


def lrs_seen(scheduler_cfg: dict, steps: int, spec: OptimizerSpec | None = None) -> list[float]:
    """LR of the first group used at each optimizer step, stepping the scheduler as Lightning would."""
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model, spec or OptimizerSpec("sgd", lr=0.1, momentum=0.9))
    config = build_scheduler(optimizer, SchedulerSpec(**scheduler_cfg), RunLength(float(steps), steps_per_epoch=10.0))
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        config["scheduler"].step()
    return seen


def test_warmup_cosine_as_seen_by_the_optimizer():
    lrs = lrs_seen({"name": "warmup_cosine", "warmup": 0.1, "min_lr": 1e-4}, steps=100)
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(0.05)
    assert lrs[10] == pytest.approx(0.1)
    assert lrs[99] == pytest.approx(1e-4)
    assert max(lrs) == pytest.approx(0.1)


@pytest.mark.parametrize("warmup", [4, 4.0])  # 4.0 is whole: steps, as 4 is
def test_warmup_in_whole_steps(warmup):
    lrs = lrs_seen({"name": "constant", "warmup": warmup}, steps=10)
    assert lrs[:6] == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])


def test_onecycle_peaks_at_optimizer_lr_and_cycles_momentum():
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model, OptimizerSpec("sgd", lr=0.2, momentum=0.9))
    spec = SchedulerSpec("onecycle", pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    config = build_scheduler(optimizer, spec, RunLength(100.0, 10.0))
    lrs, moms = [], []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        moms.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        config["scheduler"].step()
    assert lrs[0] == pytest.approx(0.2 / 25)
    assert max(lrs) == pytest.approx(0.2)
    assert lrs.index(max(lrs)) == pytest.approx(30, abs=1)
    assert lrs[-1] == pytest.approx(0.2 / 25 / 1e4, rel=1e-3)
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85)
    assert config["interval"] == "step"


def test_step_drops_at_epoch_boundaries_only():
    lrs = lrs_seen({"name": "step", "step_size": 2, "gamma": 0.5}, steps=50)  # 10 steps per epoch
    assert set(lrs[:20]) == {0.1}
    assert lrs[20:40] == pytest.approx([0.05] * 20)
    assert lrs[40] == pytest.approx(0.025)


def test_interval_and_monitor_follow_the_kind_and_can_be_overridden():
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model, OptimizerSpec("adamw", lr=1e-3))
    plateau = build_scheduler(optimizer, SchedulerSpec("plateau", factor=0.5, patience=2), RunLength(math.inf, 10.0))
    assert isinstance(plateau["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (plateau["interval"], plateau["monitor"]) == ("epoch", "val/loss")
    cosine = build_scheduler(optimizer, SchedulerSpec("cosine", interval="epoch", frequency=2), RunLength(100.0, 10.0))
    assert (cosine["interval"], cosine["frequency"]) == ("epoch", 2)
    assert cosine["scheduler"].lr_lambdas[0].__self__.total == 5  # 10 epochs, stepped every 2


def test_param_group_multipliers_keep_their_ratio_through_the_schedule():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    spec = OptimizerSpec("adamw", lr=1e-2, param_groups=[{"match": "0", "lr_mult": 0.1}])
    optimizer = build_optimizer(model, spec)
    sched = build_scheduler(optimizer, SchedulerSpec("onecycle"), RunLength(20.0, 10.0))["scheduler"]
    for _ in range(7):
        optimizer.step()
        sched.step()
    by_name = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert by_name["0/decay"] == pytest.approx(0.1 * by_name["default/decay"])


@pytest.mark.parametrize(
    "cfg, run, message",
    [
        ({"name": "warmup_cosine"}, RunLength(math.inf, 10.0), "needs a bounded run"),
        ({"name": "onecycle"}, RunLength(math.inf, 10.0), "needs a bounded run"),
        ({"name": "constant", "warmup": 0.1}, RunLength(math.inf, 10.0), "needs a bounded run"),
        (
            {"name": "warmup_cosine", "warmup": 200},
            RunLength(100.0, 10.0),
            "scheduler.warmup=200: longer than the run",
        ),
        ({"name": "cosine", "min_lr": 0.5}, RunLength(100.0, 10.0), "scheduler.min_lr=0.5: must not exceed"),
        ({"name": "cosine_restarts", "cycles": 5}, RunLength(5.0, 5.0), "scheduler.cycles=5: the first cycle"),
    ],
)
def test_build_time_errors(cfg, run, message):
    optimizer = build_optimizer(nn.Linear(2, 2), OptimizerSpec("sgd", lr=0.1))
    with pytest.raises(ConfigError, match=message):
        build_scheduler(optimizer, SchedulerSpec(**cfg), run)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "exponential"}, "scheduler.name='exponential': choose one of"),
        ({"name": "cosine", "warmup": 1.5}, "scheduler.warmup=1.5: a fraction"),
        ({"name": "cosine", "warmup": -3}, "scheduler.warmup=-3"),
        ({"name": "cosine", "gamma": 0.1}, "scheduler.gamma=0.1: not an option of scheduler=cosine"),
        ({"name": "step"}, "scheduler.step_size"),
        ({"name": "cosine", "interval": "batch"}, "scheduler.interval='batch'"),
        ({"name": "plateau", "patience": 2, "warmup": 3}, "scheduler.warmup=3: not an option"),
        ({"name": "cosine_restarts", "cycles": 0}, "scheduler.cycles=0: must be a positive integer"),
        ({"name": "cosine_restarts", "cycle_mult": 0.5}, "scheduler.cycle_mult=0.5: each cycle's length over the last"),
        ({"name": "cosine", "cycles": 2}, "scheduler.cycles=2: not an option of scheduler=cosine"),
    ],
)
def test_spec_errors_name_key_value_and_allowed(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        SchedulerSpec(**kwargs)


def test_wsd_as_seen_by_the_optimizer():
    cfg = {"name": "wsd", "warmup": 2, "decay": 0.5, "decay_shape": "linear", "min_lr": 0.0}
    lrs = lrs_seen(cfg, steps=10)
    assert lrs == pytest.approx([0.0, 0.05, 0.1, 0.1, 0.1, 0.1, 0.075, 0.05, 0.025, 0.0])


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"decay": 0.0}, "scheduler.decay=0.0"),
        ({"decay": 1.5}, "scheduler.decay=1.5"),
        ({"decay_shape": "exp"}, "scheduler.decay_shape='exp'"),
    ],
)
def test_wsd_bad_values_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        SchedulerSpec("wsd", **kwargs)


def test_cosine_restarts_as_seen_by_the_optimizer():
    lrs = lrs_seen({"name": "cosine_restarts", "cycles": 2, "cycle_mult": 1.0, "min_lr": 0.0}, steps=9)
    cycle = [0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05, 0.1 * (1 - math.cos(math.pi / 4)) / 2]
    assert lrs == pytest.approx([*cycle, *cycle, 0.0])  # 8 ticks after the first: two cycles of 4


def test_cosine_restarts_as_seen_in_a_lightning_run(make_cfg):
    """2 epochs of 4 steps: two cycles of 3.5 steps, sized by the Trainer; the LR each optimizer step used."""
    cfg = make_cfg(
        "scheduler=cosine_restarts",
        "scheduler.cycles=2",
        "scheduler.cycle_mult=1",
        "scheduler.min_lr=0",
        *NO_LOGGER,
        "test=false",
    )
    recorder = RecordLR()
    train(cfg, extra_callbacks=[recorder])
    lr = cfg.optimizer.lr
    expected = [lr * (1 + math.cos(math.pi * (t % 3.5) / 3.5)) / 2 for t in range(7)] + [0.0]
    assert recorder.lrs == pytest.approx(expected)
    assert recorder.lrs[4] > recorder.lrs[3]  # the restart


def square_loss(optimizer: torch.optim.Optimizer, model: nn.Module) -> Callable[[], torch.Tensor]:
    """A closure computing a loss and its gradient, as Lightning passes to ``step`` (sam calls it twice)."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(torch.randn(8, 3)).square().mean()
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_pairs_with_every_scheduler_or_says_why_not(optimizer):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2))  # muon needs a hidden matrix
    for name in sorted(SCHEDULERS):
        opt = build_optimizer(model, OptimizerSpec(optimizer, lr=0.01))
        options = {"step_size": 1} if name == "step" else {}
        spec = SchedulerSpec(name, **options)
        if optimizer.startswith("schedulefree") and name != "constant":
            with pytest.raises(ConfigError, match=f"scheduler='{name}': a schedule-free optimizer"):
                build_scheduler(opt, spec, RunLength(10.0, 5.0))
            continue
        if name == "onecycle" and optimizer in ("adafactor", "muon", "shampoo"):  # beta2 only; two kinds; not a ball
            with pytest.raises(ConfigError, match=r"scheduler.cycle_momentum=True: .* no single momentum"):
                build_scheduler(opt, spec, RunLength(10.0, 5.0))
            spec = SchedulerSpec(name, cycle_momentum=False)
        scheduler = build_scheduler(opt, spec, RunLength(10.0, 5.0))["scheduler"]
        if hasattr(opt, "train"):
            opt.train()
        for _ in range(10):
            opt.step(square_loss(opt, model))
            scheduler.step(1.0) if name == "plateau" else scheduler.step()
        assert all(math.isfinite(g["lr"]) and g["lr"] >= 0 for g in opt.param_groups), (optimizer, name)


def test_a_wsd_branch_resumed_into_a_longer_run_decays_over_the_new_length():
    model = nn.Linear(3, 2)
    spec = SchedulerSpec("wsd", warmup=0, decay=0.2, decay_shape="linear", min_lr=0.0)
    optimizer = build_optimizer(model, OptimizerSpec("sgd", lr=0.1))
    scheduler = build_scheduler(optimizer, spec, RunLength(100.0, 10.0))["scheduler"]
    for _ in range(50):  # the stable phase of a 100-step run
        optimizer.step()
        scheduler.step()
    saved = scheduler.state_dict()
    branch = build_optimizer(model, OptimizerSpec("sgd", lr=0.1))
    longer = build_scheduler(branch, spec, RunLength(200.0, 10.0))["scheduler"]
    longer.load_state_dict(saved)
    lrs = []
    for _ in range(150):
        branch.step()
        longer.step()
        lrs.append(branch.param_groups[0]["lr"])
    assert lrs[108] == pytest.approx(0.1)  # step 159: still stable, the decay of a 200-step run starts at 160
    assert lrs[109] == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.0)

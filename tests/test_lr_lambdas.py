"""The LR multipliers against their formulas, without training."""

import math

import pytest
import torch

from recipe.optim.lr_lambdas import Schedule, anneal, linear_warmup, step_decay


def test_linear_warmup_endpoints_and_middle():
    assert linear_warmup(0, 10, 0.0) == 0.0
    assert linear_warmup(5, 10, 0.0) == pytest.approx(0.5)
    assert linear_warmup(5, 10, 0.2) == pytest.approx(0.2 + 0.8 * 0.5)
    assert linear_warmup(10, 10, 0.0) == 1.0
    assert linear_warmup(3, 0, 0.0) == 1.0


def test_cosine_anneal_formula():
    assert anneal(0.0, 0.01) == pytest.approx(1.0)
    assert anneal(0.5, 0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert anneal(1.0, 0.01) == pytest.approx(0.01)
    assert anneal(0.25, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_warmup_cosine_at_start_end_of_warmup_middle_and_last_step():
    total, warmup, min_ratio = 101, 10, 0.001
    s = Schedule("cosine", total=total, warmup=warmup, min_ratio=min_ratio)
    assert s(0) == 0.0
    assert s(5) == pytest.approx(0.5)
    assert s(warmup) == pytest.approx(1.0)
    middle = warmup + (total - 1 - warmup) / 2
    assert s(int(middle)) == pytest.approx(anneal((int(middle) - warmup) / (total - 1 - warmup), min_ratio))
    assert s(total - 1) == pytest.approx(min_ratio)
    assert all(s(k) >= s(k + 1) for k in range(warmup, total - 1))


@pytest.mark.parametrize("step_size, milestones", [(3, ()), (None, (2, 5))])
def test_step_decay_matches_torch_steplr_stepped_per_epoch(step_size, milestones):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=1.0)
    torch_sched = (
        torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma=0.5)
        if milestones
        else torch.optim.lr_scheduler.StepLR(opt, step_size, gamma=0.5)
    )
    steps_per_epoch = 7
    ours = Schedule(
        "step",
        total=math.inf,
        gamma=0.5,
        step_size=step_size,
        milestones=milestones,
        ticks_per_epoch=steps_per_epoch,
    )
    for epoch in range(9):
        for k in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch):
            assert ours(k) == pytest.approx(opt.param_groups[0]["lr"]), (epoch, k)
        opt.step()
        torch_sched.step()
    assert step_decay(6, 0.1, 3, ()) == pytest.approx(0.01)


def test_constant_with_warmup_and_unbounded_run():
    s = Schedule("constant", total=math.inf, warmup=4, start_factor=0.25)
    assert [s(k) for k in range(6)] == pytest.approx([0.25, 0.4375, 0.625, 0.8125, 1.0, 1.0])
    assert s(10**9) == 1.0


FALLS = {
    "linear": lambda p: 1 - p,
    "cosine": lambda p: 0.5 * (1 + math.cos(math.pi * p)),
    "1-sqrt": lambda p: 1 - math.sqrt(p),
}


@pytest.mark.parametrize("shape", sorted(FALLS))
def test_wsd_warms_up_holds_the_peak_then_decays_over_the_last_fraction(shape):
    total, warmup, min_ratio = 100, 10, 0.01
    s = Schedule("wsd", total=total, warmup=warmup, min_ratio=min_ratio, shape=shape, decay_fraction=0.2)
    assert s(5) == pytest.approx(0.5)
    assert [s(k) for k in (10, 50, 79, 80)] == pytest.approx([1.0] * 4)  # the decay starts at 100 - 20
    for k in (85, 90, 97):
        assert s(k) == pytest.approx(min_ratio + (1 - min_ratio) * FALLS[shape]((k - 80) / 19))
    assert s(99) == pytest.approx(min_ratio)


def test_wsd_decay_never_starts_inside_the_warmup():
    s = Schedule("wsd", total=10, warmup=6, decay_fraction=1.0, shape="linear")
    assert s(6) == 1.0 and s(9) == pytest.approx(0.0)


def test_linear_decays_from_the_end_of_warmup():
    s = Schedule("linear", total=101, warmup=10, min_ratio=0.0)
    assert s(10) == 1.0
    assert s(55) == pytest.approx(0.5)
    assert s(100) == pytest.approx(0.0)


@pytest.mark.parametrize("cycles, cycle_mult, first", [(3, 2.0, 4), (4, 1.0, 5)])
def test_cosine_restarts_matches_torch_sgdr_and_ends_on_the_floor(cycles, cycle_mult, first):
    """Cycles of ``first``, ``first * cycle_mult``, ... ticks after a warmup of 3 fill the run; torch's
    CosineAnnealingWarmRestarts (SGDR) with the same T_0 and T_mult gives the same LR at every tick."""
    warmup, min_ratio = 3, 0.1
    length = first * sum(cycle_mult**i for i in range(cycles))
    s = Schedule(
        "cosine_restarts",
        total=warmup + length + 1,
        warmup=warmup,
        min_ratio=min_ratio,
        cycles=cycles,
        cycle_mult=cycle_mult,
    )
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=1.0)
    sgdr = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, first, int(cycle_mult), eta_min=min_ratio)
    assert [s(k) for k in range(warmup)] == pytest.approx([0.0, 1 / 3, 2 / 3])
    for k in range(warmup, warmup + int(length)):
        assert s(k) == pytest.approx(opt.param_groups[0]["lr"]), k
        opt.step()
        sgdr.step()
    assert s(warmup + first) == pytest.approx(1.0)  # the first restart
    assert s(warmup + int(length)) == pytest.approx(min_ratio)  # the last tick ends the last cycle

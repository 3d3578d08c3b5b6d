"""Muon for the hidden weight matrices, AdamW for the rest, as one optimizer Lightning can step, schedule and save."""

from __future__ import annotations

import copy
import csv

import pytest
import torch
from conftest import FAST
from torch import nn

from recipe.errors import ConfigError
from recipe.models import CNN, MLP, Transformer
from recipe.optim import OptimizerSpec, SchedulerSpec, build_optimizer, build_scheduler
from recipe.optim.schedulers import RunLength
from train import train


def muon_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> set[str]:
    muon = {id(p) for g in optimizer.parts[0].param_groups for p in g["params"]}
    return {name for name, p in model.named_parameters() if id(p) in muon}


def test_muon_gets_exactly_the_hidden_weight_matrices_of_the_mlp():
    model = MLP((8,), 3, hidden_sizes=(16, 16, 16))
    optimizer = build_optimizer(model, OptimizerSpec("muon", lr=0.02))
    assert muon_names(model, optimizer) == {"layers.5.weight", "layers.9.weight"}  # not the first layer, not the head
    adamw = {id(p) for g in optimizer.parts[1].param_groups for p in g["params"]}
    assert len(adamw) + 2 == len(list(model.parameters()))


def test_muon_gets_the_transformer_layers_matrices_only():
    model = Transformer((1, 8), 3, dim=8, depth=2, heads=2)
    names = muon_names(model, build_optimizer(model, OptimizerSpec("muon", lr=0.02)))
    per_layer = {"self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight", "linear2.weight"}
    assert names == {f"layers.{i}.{n}" for i in range(2) for n in per_layer}


def test_a_model_without_hidden_matrices_is_one_line():
    with pytest.raises(ConfigError, match="optimizer=muon: the model has no hidden 2-D weight matrix"):
        build_optimizer(CNN((1, 8, 8), 3, channels=(4, 8)), OptimizerSpec("muon", lr=0.02))


def test_groups_get_their_own_lrs_and_decays_and_a_schedule_scales_both():
    model = MLP((8,), 3, hidden_sizes=(16, 16))
    spec = OptimizerSpec("muon", lr=0.02, weight_decay=0.1, adamw_lr=1e-3, adamw_weight_decay=0.05)
    optimizer = build_optimizer(model, spec)
    groups = {g["name"]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups}
    assert groups == {
        "muon/default/decay": (0.02, 0.1),
        "adamw/default/decay": (1e-3, 0.05),
        "adamw/default/no_decay": (1e-3, 0.0),
    }
    scheduler = build_scheduler(optimizer, SchedulerSpec("cosine", min_lr=0.0), RunLength(3.0, 3.0))["scheduler"]
    optimizer.step()
    scheduler.step()
    assert optimizer.parts[0].param_groups[0]["lr"] == pytest.approx(0.01)  # halfway down the cosine
    assert optimizer.parts[1].param_groups[0]["lr"] == pytest.approx(5e-4)


def steps(model: nn.Module, optimizer: torch.optim.Optimizer, n: int) -> None:
    torch.manual_seed(1)
    for _ in range(n):
        optimizer.zero_grad()
        model(torch.randn(16, 8)).square().mean().backward()
        optimizer.step()


def test_state_dict_carries_both_states_and_a_reload_continues_identically():
    torch.manual_seed(0)
    model = MLP((8,), 3, hidden_sizes=(16, 16), norm="none")
    optimizer = build_optimizer(model, OptimizerSpec("muon", lr=0.02))
    steps(model, optimizer, 3)
    saved_model, saved = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())  # as on disk
    kinds = {frozenset(s) for s in saved["state"].values()}
    assert {"momentum_buffer"} in kinds and {"step", "exp_avg", "exp_avg_sq"} in kinds

    twin = MLP((8,), 3, hidden_sizes=(16, 16), norm="none")
    twin_optimizer = build_optimizer(twin, OptimizerSpec("muon", lr=0.02))
    twin.load_state_dict(saved_model)
    twin_optimizer.load_state_dict(saved)
    hidden = twin.layers[5].weight
    assert torch.equal(twin_optimizer.parts[0].state[hidden]["momentum_buffer"], saved["state"][0]["momentum_buffer"])
    steps(model, optimizer, 2)
    steps(twin, twin_optimizer, 2)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_lightning_trains_it_with_clipping_accumulation_and_a_schedule(make_cfg, tmp_path):
    cfg = make_cfg(
        "optimizer=muon",
        "scheduler=warmup_cosine",
        "trainer.gradient_clip_val=1.0",
        "trainer.accumulate_grad_batches=2",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "test=false",
        *FAST,
    )
    train(cfg)
    rows = list(csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()))
    lr_columns = {k for k in rows[0] if k.startswith("lr")}
    assert any("muon" in k for k in lr_columns) and any("adamw" in k for k in lr_columns)
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    kinds = {frozenset(s) for s in saved["optimizer_states"][0]["state"].values()}
    assert {"momentum_buffer"} in kinds and {"step", "exp_avg", "exp_avg_sq"} in kinds

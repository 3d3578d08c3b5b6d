"""Which parameters get weight decay, and per-rule LR multipliers and freezing."""

import pytest
import torch
from torch import nn

from recipe.errors import ConfigError
from recipe.models import CNN, MLP, Transformer
from recipe.optim import OptimizerSpec, build_optimizer
from recipe.optim.param_groups import no_decay_names, split_param_groups


class Mixed(nn.Module):
    """Every kind of parameter the no-decay rule must sort."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.GroupNorm(2, 4))
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)
        self.pos_embed = nn.Parameter(torch.randn(1, 5, 4))

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}


def names(group: dict, model: nn.Module) -> set[str]:
    ids = {id(p) for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_biases_and_every_norm_layer_are_excluded_from_decay():
    model = Mixed()
    expected = {
        "backbone.0.bias",
        "backbone.1.weight",
        "backbone.1.bias",
        "backbone.2.weight",
        "backbone.2.bias",
        "norm.weight",
        "norm.bias",
        "head.bias",
        "pos_embed",
    }
    assert no_decay_names(model) == expected
    groups = {g["name"]: g for g in split_param_groups(model, lr=1e-3, weight_decay=0.05)}
    assert names(groups["default/decay"], model) == {"backbone.0.weight", "head.weight"}
    assert groups["default/decay"]["weight_decay"] == 0.05
    assert names(groups["default/no_decay"], model) == expected
    assert groups["default/no_decay"]["weight_decay"] == 0.0


def test_switch_off_decays_everything():
    model = Mixed()
    groups = split_param_groups(model, lr=1e-3, weight_decay=0.05, exclude_bias_and_norm=False)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.05
    assert names(groups[0], model) == {n for n, _ in model.named_parameters()}


def test_rules_set_lr_multiplier_and_weight_decay_by_prefix_and_glob():
    model = Mixed()
    rules = [{"match": "backbone", "lr_mult": 0.1, "weight_decay": 0.5}, {"match": "head.*", "lr_mult": 2.0}]
    groups = {g["name"]: g for g in split_param_groups(model, lr=1e-2, weight_decay=0.05, rules=rules)}
    assert groups["backbone/decay"]["lr"] == pytest.approx(1e-3)
    assert groups["backbone/decay"]["weight_decay"] == 0.5
    assert groups["backbone/no_decay"]["weight_decay"] == 0.0
    assert names(groups["head.*/decay"], model) == {"head.weight"}
    assert groups["head.*/decay"]["lr"] == pytest.approx(2e-2)
    assert names(groups["default/no_decay"], model) == {"norm.weight", "norm.bias", "pos_embed"}


def test_lr_mult_zero_freezes():
    model = Mixed()
    groups = split_param_groups(model, lr=1e-2, weight_decay=0.0, rules=[{"match": "backbone", "lr_mult": 0}])
    in_optimizer = set().union(*(names(g, model) for g in groups))
    assert not any(n.startswith("backbone") for n in in_optimizer)
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"match": "backbon"}, r"optimizer.param_groups\[0\].match='backbon': matches no parameter"),
        ({"match": "head", "lr_mult": -1}, r"optimizer.param_groups\[0\].lr_mult=-1.0: must be >= 0"),
        ({"lr_mult": 1}, "needs a 'match'"),
        ({"match": "head", "lr": 1}, r"optimizer.param_groups\[0\].lr=1: allowed keys"),
    ],
)
def test_bad_rules(rule, message):
    with pytest.raises(ConfigError, match=message):
        split_param_groups(Mixed(), lr=1e-3, weight_decay=0.0, rules=[rule])


def lr_of(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The LR each named parameter actually gets."""
    lrs = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    return {name: lrs[id(p)] for name, p in model.named_parameters()}


def test_layer_decay_on_the_mlp_counts_hidden_layers_with_their_norms():
    model = MLP((8,), 3, hidden_sizes=(16, 16), norm="batch")
    lrs = lr_of(model, build_optimizer(model, OptimizerSpec("adamw", lr=1.0, layer_decay=0.5)))
    assert lrs == pytest.approx(
        {
            "layers.1.weight": 0.25,  # first hidden Linear: two blocks below the head
            "layers.2.weight": 0.25,  # its BatchNorm
            "layers.2.bias": 0.25,
            "layers.5.weight": 0.5,
            "layers.6.weight": 0.5,
            "layers.6.bias": 0.5,
            "layers.9.weight": 1.0,  # the head keeps the LR
            "layers.9.bias": 1.0,
        }
    )


def test_layer_decay_on_the_cnn_counts_conv_blocks():
    model = CNN((1, 8, 8), 3, channels=(4, 8))
    lrs = lr_of(model, build_optimizer(model, OptimizerSpec("sgd", lr=1.0, layer_decay=0.5)))
    assert lrs["features.0.0.weight"] == lrs["features.0.1.bias"] == pytest.approx(0.25)
    assert lrs["features.2.0.weight"] == lrs["features.2.1.weight"] == pytest.approx(0.5)
    assert lrs["head.1.weight"] == lrs["head.1.bias"] == 1.0


def test_layer_decay_on_the_transformer_follows_beit_and_composes_with_rules():
    model = Transformer((1, 8), 3, dim=8, depth=2, heads=2)
    spec = OptimizerSpec("adamw", lr=1.0, layer_decay=0.5, param_groups=[{"match": "layers.1", "lr_mult": 0.1}])
    lrs = lr_of(model, build_optimizer(model, spec))
    assert lrs["pos_embed"] == lrs["cls_token"] == lrs["embed.weight"] == pytest.approx(0.125)
    assert lrs["layers.0.linear1.weight"] == pytest.approx(0.25)
    assert lrs["layers.1.linear1.weight"] == pytest.approx(0.1 * 0.5)  # the rule's lr_mult times the block's
    assert lrs["norm.weight"] == lrs["head.weight"] == 1.0


def test_layer_decay_keeps_no_decay_apart():
    model = MLP((8,), 3, hidden_sizes=(16,), norm="batch")
    groups = split_param_groups(model, lr=1.0, weight_decay=0.1, layer_decay=0.5)
    assert {(g["name"], g["weight_decay"]) for g in groups} == {
        ("default/layer0/decay", 0.1),
        ("default/layer0/no_decay", 0.0),
        ("default/layer1/decay", 0.1),
        ("default/layer1/no_decay", 0.0),
    }


@pytest.mark.parametrize("value", [0.0, 1.5, -0.5])
def test_bad_layer_decay_names_the_key(value):
    with pytest.raises(ConfigError, match=f"optimizer.layer_decay={value}"):
        OptimizerSpec("adamw", lr=1e-3, layer_decay=value)

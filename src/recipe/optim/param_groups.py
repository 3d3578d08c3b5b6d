"""Split a model's parameters into optimizer groups: no weight decay for biases and norms, per-group LR,
layer-wise LR decay.

The no-decay rule is timm's and nanoGPT's: a parameter with fewer than 2 dimensions (every bias and the
scale and shift of every BatchNorm / LayerNorm / GroupNorm, whatever its class) or whose name ends in
``.bias`` gets weight decay 0, plus whatever the model names in an optional ``no_weight_decay()`` method.
torch has no helper for this, so it is written here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import nn

from recipe.errors import ConfigError, config_error

GROUP_KEYS = {"match", "lr_mult", "weight_decay", "name"}


def _matches(name: str, patterns: Sequence[str]) -> bool:
    """A parameter matches a module prefix (``backbone`` matches ``backbone.0.weight``) or a glob."""
    return any(name == p or name.startswith(p + ".") or fnmatch.fnmatchcase(name, p) for p in patterns)


def no_decay_names(model: nn.Module) -> set[str]:
    """Names of the parameters that weight decay must not touch."""
    extra = tuple(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else ()
    return {
        name for name, p in model.named_parameters() if p.ndim <= 1 or name.endswith(".bias") or _matches(name, extra)
    }


def layer_ids(model: nn.Module) -> dict[str, int]:
    """Each parameter's block: 0 nearest the input, the largest for the head.

    The model's own ``layer_id(name)`` when it has one (the transformer numbers its blocks as BEiT does);
    otherwise by module order: each module owning a ``weight`` of 2 or more dimensions (a Linear, a conv) starts
    a block, and the parameters of the modules after it (its norm) join that block. That numbers an MLP's hidden
    layers and a CNN's conv blocks, with the head last. timm needs a per-model ``group_matcher`` for this.
    """
    if hasattr(model, "layer_id"):
        return {name: int(model.layer_id(name)) for name, _ in model.named_parameters()}
    ids: dict[str, int] = {}
    block = -1
    for prefix, module in model.named_modules():
        weight = module._parameters.get("weight")
        if weight is not None and weight.ndim >= 2:
            block += 1
        ids.update({name: max(block, 0) for name, _ in module.named_parameters(prefix=prefix, recurse=False)})
    return ids


def _check_rule(i: int, rule: Mapping[str, Any]) -> tuple[list[str], float]:
    key = f"optimizer.param_groups[{i}]"
    unknown = set(rule) - GROUP_KEYS
    if unknown:
        raise config_error(
            f"{key}.{sorted(unknown)[0]}", rule[sorted(unknown)[0]], f"allowed keys: {sorted(GROUP_KEYS)}"
        )
    if "match" not in rule:
        raise ConfigError(f"{key}: needs a 'match' (a module name prefix or a glob such as 'backbone.*')")
    patterns = [rule["match"]] if isinstance(rule["match"], str) else list(rule["match"])
    lr_mult = float(rule.get("lr_mult", 1.0))
    if lr_mult < 0:
        raise config_error(f"{key}.lr_mult", lr_mult, "must be >= 0 (0 freezes the matched parameters)")
    if rule.get("weight_decay") is not None and rule["weight_decay"] < 0:
        raise config_error(f"{key}.weight_decay", rule["weight_decay"], "must be >= 0")
    return patterns, lr_mult


def split_param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    exclude_bias_and_norm: bool = True,
    rules: Iterable[Mapping[str, Any]] = (),
    layer_decay: float | None = None,
) -> list[dict[str, Any]]:
    """Return torch param-group dicts (``params``, ``lr``, ``weight_decay``, ``lr_mult``, ``name``).

    Each rule ``{match, lr_mult, weight_decay?, name?}`` claims the parameters it matches (first rule wins);
    the rest form the ``default`` group. Every group is split into decay and no-decay halves. A rule with
    ``lr_mult: 0`` freezes its parameters (``requires_grad=False``) and leaves them out of the optimizer.
    ``layer_decay`` (the BEiT fine-tuning recipe) further splits groups by block (see ``layer_ids``) and
    multiplies each block's ``lr_mult`` by ``layer_decay ** (blocks above it)``: the head keeps its LR.
    """
    rules = [dict(r) for r in rules]
    checked = [_check_rule(i, r) for i, r in enumerate(rules)]
    skip_decay = no_decay_names(model) if exclude_bias_and_norm else set()
    blocks = layer_ids(model) if layer_decay is not None else {}
    top = max(blocks.values(), default=0)
    buckets: dict[tuple[int, int, bool], list[nn.Parameter]] = {}
    claimed = [0] * len(rules)
    for name, param in model.named_parameters():
        owner = next((i for i, (patterns, _) in enumerate(checked) if _matches(name, patterns)), -1)
        if owner >= 0:
            claimed[owner] += 1
            if checked[owner][1] == 0:
                param.requires_grad_(False)
        if not param.requires_grad:
            continue
        buckets.setdefault((owner, blocks.get(name, top), name not in skip_decay), []).append(param)

    for i, count in enumerate(claimed):
        if count == 0:
            names = ", ".join(n for n, _ in list(model.named_parameters())[:4])
            raise config_error(
                f"optimizer.param_groups[{i}].match",
                rules[i]["match"],
                f"matches no parameter (names look like: {names})",
            )

    groups = []
    for (owner, block, decays), params in sorted(buckets.items(), key=lambda kv: (*kv[0][:2], not kv[0][2])):
        rule = rules[owner] if owner >= 0 else {}
        lr_mult = checked[owner][1] if owner >= 0 else 1.0
        base_name = rule.get("name") or (str(rule["match"]) if owner >= 0 else "default")
        if layer_decay is not None:
            lr_mult *= layer_decay ** (top - block)
            base_name += f"/layer{block}"
        group_decay = rule.get("weight_decay")
        groups.append(
            {
                "params": params,
                "lr": lr * lr_mult,
                "lr_mult": lr_mult,
                "weight_decay": (weight_decay if group_decay is None else group_decay) if decays else 0.0,
                "name": f"{base_name}/{'decay' if decays else 'no_decay'}",
            }
        )
    return groups

"""Optimizers chosen by name, every torch argument reachable from the ``optimizer`` config group."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_optimizer
import schedulefree
import torch
from torch import nn

from recipe.errors import ConfigError, config_error, is_number, require_positive_int
from recipe.optim.lamb import Lamb
from recipe.optim.muon import MuonWithAdamW, route_muon
from recipe.optim.param_groups import split_param_groups
from recipe.optim.sam import SAM, check_sam_trainer

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "adafactor": torch.optim.Adafactor,
    "lion": pytorch_optimizer.Lion,
    "adopt": pytorch_optimizer.ADOPT,
    "prodigy": pytorch_optimizer.Prodigy,
    "soap": pytorch_optimizer.SOAP,
    "shampoo": pytorch_optimizer.Shampoo,
    "lamb": Lamb,
    "schedulefree_adamw": schedulefree.AdamWScheduleFree,
    "schedulefree_sgd": schedulefree.SGDScheduleFree,
    "muon": MuonWithAdamW,
    "sam": SAM,
}
SCHEDULE_FREE = (schedulefree.AdamWScheduleFree, schedulefree.SGDScheduleFree)
LR_SCALING = ("linear", "sqrt")
SAM_BASES = sorted(n for n, c in OPTIMIZERS.items() if c not in (SAM, MuonWithAdamW, *SCHEDULE_FREE))


def _torch_args(cls: type[torch.optim.Optimizer]) -> dict[str, inspect.Parameter]:
    """The optimizer's named arguments, and those of the classes its ``**kwargs`` are passed on to."""
    args: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        params = inspect.signature(klass.__init__).parameters
        if "defaults" in params:  # an optimizer base class: its **kwargs are not the user's
            break
        args |= {n: p for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return {n: p for n, p in args.items() if n not in {"self", "params", "lr", "weight_decay"}}


def _check_tuples(args: Mapping[str, inspect.Parameter], kwargs: Mapping[str, Any]) -> None:
    """An argument whose default is a tuple of numbers (``betas``) takes as many numbers: torch indexes it
    unchecked, so ``betas=[0.9]`` would end in an ``IndexError``."""
    for key, value in kwargs.items():
        default = args[key].default if key in args else None
        if not isinstance(default, tuple) or not all(is_number(d) for d in default):
            continue
        numbers = isinstance(value, Sequence) and not isinstance(value, str)
        if not numbers or len(value) != len(default) or not all(is_number(v) for v in value):
            allowed = f"must be a list of {len(default)} numbers, e.g. {list(default)}"
            raise config_error(f"optimizer.{key}", value, allowed)


def is_schedule_free(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` keeps separate training and evaluation weights (``train()`` / ``eval()``)."""
    return isinstance(optimizer, SCHEDULE_FREE)


class OptimizerSpec:
    """What to build, checked when the config is instantiated so bad values fail before training: the names and
    shapes of the torch optimizer's arguments against its signature; the values torch owns when it is built.

    Args:
        name: one of ``OPTIMIZERS``.
        lr: peak learning rate for a batch of ``base_batch_size`` (before ``lr_scaling``).
        weight_decay: decay for weights with 2 or more dimensions.
        exclude_bias_and_norm: give biases, norm parameters and ``model.no_weight_decay()`` decay 0.
        param_groups: rules ``{match, lr_mult, weight_decay?, name?}``; see ``split_param_groups``.
        layer_decay: ``None``, or each block's LR is the head's times ``layer_decay ** (blocks above it)``.
        lr_scaling: ``None``, ``"linear"`` or ``"sqrt"``: scale ``lr`` by the global batch / ``base_batch_size``.
        base_batch_size: the batch size ``lr`` was tuned for.
        **torch_kwargs: any other argument of the torch optimizer (betas, eps, momentum, nesterov, ...); for
            ``sam``, ``base`` (the name of the optimizer it wraps), ``rho``, ``adaptive`` and the base's arguments.
    """

    def __init__(
        self,
        name: str,
        lr: float,
        weight_decay: float = 0.0,
        exclude_bias_and_norm: bool = True,
        param_groups: Sequence[Mapping[str, Any]] = (),
        lr_scaling: str | None = None,
        base_batch_size: int = 256,
        layer_decay: float | None = None,
        **torch_kwargs: Any,
    ) -> None:
        if name not in OPTIMIZERS:
            raise config_error("optimizer.name", name, f"choose one of {sorted(OPTIMIZERS)}")
        if not isinstance(lr, (int, float)) or not lr > 0 or not math.isfinite(lr):
            raise config_error("optimizer.lr", lr, "must be a finite number > 0")
        if weight_decay < 0:
            raise config_error("optimizer.weight_decay", weight_decay, "must be >= 0")
        if lr_scaling not in (None, *LR_SCALING):
            raise config_error("optimizer.lr_scaling", lr_scaling, f"choose null or one of {list(LR_SCALING)}")
        require_positive_int("optimizer.base_batch_size", base_batch_size)
        if layer_decay is not None and not 0 < layer_decay <= 1:
            raise config_error("optimizer.layer_decay", layer_decay, "null, or in (0, 1] (0.65 to 0.85 is usual)")
        self.cls = OPTIMIZERS[name]
        args = _torch_args(self.cls)
        if self.cls is SAM:
            base = torch_kwargs.pop("base", "adamw")
            if base not in SAM_BASES:
                raise config_error("optimizer.base", base, f"the optimizer SAM wraps: choose one of {SAM_BASES}")
            torch_kwargs["base_optimizer"] = OPTIMIZERS[base]
            args = _torch_args(OPTIMIZERS[base]) | args
        unknown = set(torch_kwargs) - set(args)
        if unknown:
            key = sorted(unknown)[0]
            allowed = sorted(set(args) - {"base_optimizer"} | ({"base"} if self.cls is SAM else set()))
            raise config_error(
                f"optimizer.{key}",
                torch_kwargs[key],
                f"not an argument of {self.cls.__name__}; allowed: {allowed}",
            )
        _check_tuples(args, torch_kwargs)
        self.name, self.lr, self.weight_decay = name, float(lr), float(weight_decay)
        self.exclude_bias_and_norm = exclude_bias_and_norm
        self.param_groups = [dict(g) for g in param_groups]
        self.lr_scaling, self.base_batch_size = lr_scaling, base_batch_size
        self.layer_decay = layer_decay
        self.torch_kwargs = {
            k: (tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v) for k, v in torch_kwargs.items()
        }

    def check_trainer(self, trainer: Mapping[str, Any]) -> None:
        """Reject trainer settings this optimizer cannot work with."""
        if self.cls is SAM:
            check_sam_trainer(trainer)

    def lr_scale(self, global_batch_size: int | None) -> float:
        """The factor of the batch-size scaling rule (Goyal et al. 2017 for ``linear``)."""
        if self.lr_scaling is None or global_batch_size is None:
            return 1.0
        ratio = global_batch_size / self.base_batch_size
        return ratio if self.lr_scaling == "linear" else math.sqrt(ratio)

    def __repr__(self) -> str:
        return f"OptimizerSpec({self.name}, lr={self.lr}, weight_decay={self.weight_decay}, {self.torch_kwargs})"


@dataclass(frozen=True)
class PeakLR:
    """The LR a run trains with, resolved once before fitting and read by everything that needs it.

    Args:
        configured: ``optimizer.lr`` as the run stands for it: the config's, or the LR finder's when applied.
        peak: ``configured`` after ``lr_scaling`` for the global batch: what the optimizer and schedule start from.
    """

    configured: float
    peak: float


def resolve_lr(spec: OptimizerSpec, global_batch_size: int | None, found: float | None = None) -> PeakLR:
    """``optimizer.lr`` scaled for the global batch, or the LR finder's ``found`` LR (already at that batch)."""
    scale = spec.lr_scale(global_batch_size)
    if found is not None:
        return PeakLR(configured=found / scale, peak=found)
    return PeakLR(configured=spec.lr, peak=spec.lr * scale)


def build_optimizer(model: nn.Module, spec: OptimizerSpec, lr: float | None = None) -> torch.optim.Optimizer:
    """The torch optimizer for ``model`` at peak LR ``lr`` (default ``spec.lr``), with decay / no-decay and
    per-rule and per-block LR groups."""
    lr = spec.lr if lr is None else lr
    groups = split_param_groups(
        model, lr, spec.weight_decay, spec.exclude_bias_and_norm, spec.param_groups, spec.layer_decay
    )
    if not groups:
        raise ConfigError("optimizer.param_groups: every parameter is frozen (lr_mult 0), nothing to train")
    if spec.cls is MuonWithAdamW:
        groups = route_muon(model, groups)
    try:  # torch judges the values it owns (momentum < 0, nesterov without momentum): one line, not a traceback
        return spec.cls(groups, lr=lr, weight_decay=spec.weight_decay, **spec.torch_kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"optimizer ({spec.name}): {err}") from None

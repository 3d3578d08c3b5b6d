"""Muon for the hidden weight matrices and AdamW for everything else, as one ``torch.optim.Optimizer``.

Lightning's automatic optimization steps one optimizer, and gradient clipping, accumulation, AMP's gradient
scaler, LR schedules and the LR monitor all work through ``param_groups`` and ``state_dict``. So this class
holds torch's ``Muon`` and ``AdamW`` (``parts``) and shares its own ``param_groups`` (Muon's first) and
``state`` with them: one state dict carries both states, and a schedule that scales ``param_groups`` scales
both. torch has no such
combination (Keller Jordan's ``MuonWithAuxAdam`` is not on PyPI), so it is written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from recipe.errors import ConfigError
from recipe.optim.param_groups import layer_ids


class MuonWithAdamW(torch.optim.Optimizer):
    """Groups with ``muon: True`` go to torch's ``Muon``, the others to ``AdamW`` (at ``adamw_lr * lr_mult``).

    A group without a ``muon`` key is split by shape: 2-D parameters to Muon, the rest to AdamW.

    Args:
        params: parameters or param-group dicts (``lr_mult`` scales ``adamw_lr`` for the AdamW groups).
        lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn: ``torch.optim.Muon``'s.
        adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay: ``torch.optim.AdamW``'s; a group whose
            ``weight_decay`` is 0 (biases, norms) keeps 0.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.02,
        weight_decay: float = 0.01,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        adamw_lr: float = 3e-4,
        adamw_betas: tuple[float, float] = (0.9, 0.95),
        adamw_eps: float = 1e-10,
        adamw_weight_decay: float = 0.01,
    ) -> None:
        muon_groups, adamw_groups = [], []
        for group in params:
            group = dict(group) if isinstance(group, dict) else {"params": [group]}
            group["params"] = list(group["params"])
            if "muon" not in group:
                flat = [p for p in group["params"] if p.ndim == 2]
                rest = [p for p in group["params"] if p.ndim != 2]
                muon_groups += [{**group, "params": flat}] if flat else []
                adamw_groups += [{**group, "params": rest}] if rest else []
            else:
                (muon_groups if group.pop("muon") else adamw_groups).append(group)
        for group in adamw_groups:
            group["lr"] = adamw_lr * group.get("lr_mult", 1.0)
            group["weight_decay"] = adamw_weight_decay if group.get("weight_decay", weight_decay) > 0 else 0.0
        parts: list[torch.optim.Optimizer] = []
        if muon_groups:
            muon_args = {"momentum": momentum, "nesterov": nesterov, "ns_coefficients": ns_coefficients, "eps": eps}
            muon_args |= {"ns_steps": ns_steps, "adjust_lr_fn": adjust_lr_fn}
            parts.append(torch.optim.Muon(muon_groups, lr=lr, weight_decay=weight_decay, **muon_args))
        if adamw_groups:
            parts.append(torch.optim.AdamW(adamw_groups, lr=adamw_lr, betas=adamw_betas, eps=adamw_eps))
        self.parts = parts
        self._sizes = [len(part.param_groups) for part in parts]
        super().__init__([g for part in parts for g in part.param_groups], {"lr": lr})
        self._share()

    def _share(self) -> None:
        """Point the inner optimizers at this optimizer's groups and state (again after a load replaced them)."""
        start = 0
        for part, size in zip(self.parts, self._sizes, strict=True):
            part.param_groups, part.state = self.param_groups[start : start + size], self.state
            start += size

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._share()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss


def route_muon(model: nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark the hidden 2-D weight matrices for Muon: not in the first block (the input layer, embeddings) nor
    the last (the head), by ``layer_ids``. Conv kernels go to AdamW: torch's Muon takes 2-D parameters only."""
    ids = layer_ids(model)
    top = max(ids.values())
    hidden = {id(p) for name, p in model.named_parameters() if p.ndim == 2 and 0 < ids[name] < top}
    if not hidden:
        raise ConfigError(
            "optimizer=muon: the model has no hidden 2-D weight matrix (the first layer, the head and conv kernels "
            "go to AdamW), so Muon would train nothing; choose another optimizer"
        )
    routed = []
    for group in groups:
        for muon in (True, False):
            params = [p for p in group["params"] if (id(p) in hidden) is muon]
            if params:
                name = f"{'muon' if muon else 'adamw'}/{group['name']}"
                routed.append({**group, "params": params, "muon": muon, "name": name})
    return routed

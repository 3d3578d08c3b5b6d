"""LAMB (You et al. 2019) from pytorch-optimizer, stepping as the paper does."""

from __future__ import annotations

from typing import Any

import pytorch_optimizer


class Lamb(pytorch_optimizer.Lamb):
    """pytorch-optimizer's ``Lamb`` with ``adam_debias`` on by default.

    The paper's step is ``lr * trust_ratio * r``; the package divides it by ``1 - beta1^t`` unless ``adam_debias``
    is set, a 10x larger first step. Every other argument is the package's (see ``pytorch_optimizer.Lamb``).
    """

    def __init__(self, params: Any, lr: float = 1e-3, adam_debias: bool = True, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, adam_debias=adam_debias, **kwargs)

"""Hyperparameter search on Optuna: the search space, the pruning callback, the end-of-study report.

Each name below loads its module when first used (PEP 562), so that the early checks can import
``recipe.sweeps.auto`` without Optuna, Lightning or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a type checker and an editor see
    from recipe.sweeps.pruning import OptunaPruning as OptunaPruning
    from recipe.sweeps.report import Report as Report
    from recipe.sweeps.report import write_report as write_report
    from recipe.sweeps.space import SearchSpace as SearchSpace
    from recipe.sweeps.trial import ActiveTrial as ActiveTrial
    from recipe.sweeps.trial import active_trial as active_trial
    from recipe.sweeps.trial import current_trial as current_trial

_MODULES = {
    "ActiveTrial": "trial",
    "OptunaPruning": "pruning",
    "Report": "report",
    "SearchSpace": "space",
    "active_trial": "trial",
    "current_trial": "trial",
    "write_report": "report",
}
__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"recipe.sweeps.{_MODULES[name]}"), name)

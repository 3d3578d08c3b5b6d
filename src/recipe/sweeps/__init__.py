"""Hyperparameter search on Optuna: the search space, the pruning callback, the end-of-study report."""

from recipe.sweeps.pruning import OptunaPruning
from recipe.sweeps.report import Report, write_report
from recipe.sweeps.space import SearchSpace
from recipe.sweeps.trial import ActiveTrial, active_trial, current_trial

__all__ = [
    "ActiveTrial",
    "OptunaPruning",
    "Report",
    "SearchSpace",
    "active_trial",
    "current_trial",
    "write_report",
]

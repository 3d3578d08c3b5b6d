"""Tune's results as an in-memory Optuna study, so that the Optuna sweeper's report (``recipe.sweeps.report``) writes
the same trials table, best command and plots for a Ray search."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from recipe.sweeps.ray.space import distributions, trial_values
from recipe.sweeps.ray.trainable import trial_number
from recipe.sweeps.ray.trial import OUTPUT_DIR_KEY
from recipe.sweeps.report import OUTPUT_DIR_ATTR, OVERRIDES_ATTR
from recipe.sweeps.runs import JOB_FILE
from recipe.sweeps.space import SearchSpace

FAILURE_ATTR = "failure"  # user attribute: why a trial failed, as the Optuna sweeper names it


def _job(output_dir: str | None) -> dict[str, Any]:
    """The trial's ``job.json`` (``recipe.sweeps.callback``): how its Hydra job ended; empty when it never did (a
    trial the scheduler stopped, or one that failed before its folder existed)."""
    path = Path(output_dir or "") / JOB_FILE
    return json.loads(path.read_text()) if output_dir and path.is_file() else {}


def frozen_trial(result: Any, number: int, space: SearchSpace, metric: str, overrides: list[str]) -> FrozenTrial:
    """One Tune result as a finished Optuna trial: completed (with its job's value), failed, or pruned (stopped
    early by the scheduler); its curve is the metric it reported after each validation."""
    values = trial_values(result.config)
    dists = distributions(space, values)
    output_dir = (result.metrics or {}).get(OUTPUT_DIR_KEY)
    job = _job(output_dir)
    history = result.metrics_dataframe
    curve = {}
    if history is not None and metric in history:
        curve = dict(zip(history["training_iteration"], history[metric], strict=True))
    state, value, attrs = TrialState.PRUNED, None, {OVERRIDES_ATTR: overrides, OUTPUT_DIR_ATTR: output_dir}
    if job.get("status") == "completed":
        state, value = TrialState.COMPLETE, float(job["value"])
    elif result.error is not None or job.get("status") == "failed":
        state, attrs[FAILURE_ATTR] = TrialState.FAIL, job.get("reason") or str(result.error).strip().splitlines()[-1]
    end = datetime.datetime.now()
    seconds = float((result.metrics or {}).get("time_total_s") or job.get("duration_s") or 0.0)
    return FrozenTrial(
        number=number,
        trial_id=number,
        state=state,
        value=value,
        values=None,
        datetime_start=end - datetime.timedelta(seconds=seconds),
        datetime_complete=end,
        params={name: values[name.split("|")[0]] for name in dists},
        distributions=dists,
        user_attrs=attrs,
        system_attrs={},
        intermediate_values={int(step) - 1: float(v) for step, v in curve.items()},
    )


def study_of(results: Any, space: SearchSpace, metric: str, direction: str, name: str, overrides: Any) -> optuna.Study:
    """An in-memory study holding each Tune trial; ``overrides(values)`` gives a trial's command-line overrides."""
    study = optuna.create_study(direction=direction, study_name=name)
    numbered = sorted((trial_number(Path(r.path).name), r) for r in results)
    for number, result in numbered:
        study.add_trial(frozen_trial(result, number, space, metric, overrides(trial_values(result.config))))
    return study

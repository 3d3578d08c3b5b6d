"""What a finished search leaves in its sweep folder: the trial table, the best run's command, two plots."""

from __future__ import annotations

import csv
import logging
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import matplotlib as optuna_plots

log = logging.getLogger(__name__)

OVERRIDES_ATTR = "overrides"  # user attribute: the trial's command-line overrides
OUTPUT_DIR_ATTR = "output_dir"  # user attribute: the trial's run folder


@dataclass
class Report:
    """Where the report went, the best trial as a command (``None`` when no trial completed or when there are
    several objectives), and a command per trial of the Pareto front (several objectives only)."""

    files: list[Path]
    best_command: str | None
    pareto_commands: list[str] = field(default_factory=list)


def command(overrides: Sequence[str]) -> str:
    """The ``python src/train.py ...`` line that trains with ``overrides``, quoted for the shell."""
    return shlex.join(["python", "src/train.py", *overrides])


def train_command(trial: FrozenTrial) -> str:
    """The ``python src/train.py ...`` line that trains ``trial``'s configuration again."""
    return command(trial.user_attrs.get(OVERRIDES_ATTR, []))


def metric_names(metric: str | Sequence[str]) -> list[str]:
    """The objectives' names: ``optimized_metric`` as a list."""
    return [metric] if isinstance(metric, str) else [str(m) for m in metric]


def trial_rows(study: optuna.Study, metric: str | Sequence[str]) -> list[dict[str, Any]]:
    """One row per trial: number, state, each objective's value, duration, epochs reported, each parameter."""
    metrics = metric_names(metric)
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for trial in trials for name in trial.params})
    rows = []
    for trial in trials:
        duration = trial.duration.total_seconds() if trial.duration else None
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                **dict(zip(metrics, trial.values or [None] * len(metrics), strict=True)),
                "duration_s": None if duration is None else round(duration, 1),
                "epochs": len(trial.intermediate_values),
                **{name: trial.params.get(name) for name in names},
                OUTPUT_DIR_ATTR: trial.user_attrs.get(OUTPUT_DIR_ATTR),
            }
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub Markdown table of ``rows`` (all with the same keys).

    Hand-written: pandas' ``to_markdown`` would add pandas and tabulate as dependencies for twenty lines.
    """
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _save_plot(plot: Any, path: Path) -> Path | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = plot()
    except (ValueError, RuntimeError) as err:  # e.g. importances need two finished trials
        log.info(f"No {path.name}: {err}")
        return None
    axes.figure.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(axes.figure)
    return path


def _pareto_table(study: optuna.Study, metrics: list[str], path: Path) -> list[str]:
    """Write ``pareto_front.md``: the trials no other trial beats on every objective; return their commands."""
    front = sorted(study.best_trials, key=lambda t: t.number)
    rows = [
        {"number": t.number, **dict(zip(metrics, t.values, strict=True)), "command": train_command(t)} for t in front
    ]
    directions = ", ".join(f"{m} ({d.name.lower()})" for m, d in zip(metrics, study.directions, strict=True))
    lines = [f"# Pareto front: {directions}", "", "No other trial is as good on every objective and better on one.", ""]
    path.write_text("\n".join(lines) + "\n" + markdown_table(rows))
    return [row["command"] for row in rows]


def write_report(study: optuna.Study, directory: Path, metric: str | Sequence[str]) -> Report:
    """Write ``trials.csv``, ``trials.md``, ``optimization_history.png`` and ``param_importances.png``; with
    several objectives, ``pareto_front.md`` and ``pareto_front.png`` instead of the two plots.

    Args:
        study: the study, all trials of it (also those of earlier or parallel runs of the search).
        directory: the sweep folder.
        metric: the name of the optimized value (a list of names with several objectives), for the headers.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    rows = trial_rows(study, metric)
    if rows:
        with open(directory / "trials.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (directory / "trials.md").write_text(markdown_table(rows))
        files += [directory / "trials.csv", directory / "trials.md"]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(study.directions) > 1:
        metrics = metric_names(metric)
        if not complete:
            return Report(files, None)
        commands = _pareto_table(study, metrics, directory / "pareto_front.md")
        front = _save_plot(
            lambda: optuna_plots.plot_pareto_front(study, target_names=metrics), directory / "pareto_front.png"
        )
        return Report([*files, directory / "pareto_front.md", *([front] if front else [])], None, commands)
    plots = {
        "optimization_history.png": lambda: optuna_plots.plot_optimization_history(study, target_name=metric),
        "param_importances.png": lambda: optuna_plots.plot_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target_name=metric
        ),
    }
    if not complete:
        return Report(files, None)
    files += [p for name, plot in plots.items() if (p := _save_plot(plot, directory / name))]
    return Report(files, train_command(study.best_trial))

"""What a study leaves in its sweep folder, and prints: the isolation table and plot, the axis plots with their edge
flags, and each arm's validation-loss curve (Google's Deep Learning Tuning Playbook, "isolation plots" and "axis
plots"; no library draws them: Optuna's ``plot_slice`` is an axis plot without the edge check).

- ``study.md`` / ``study.csv``: per arm, its best search trial, its best configuration's value over the seeds (mean
  ± standard deviation), Welch's test against the best arm (``recipe.sweeps.stats``), and the time the arm took.
- ``isolation.png``: the same, one column per arm, each seed a point.
- ``axes.png``: the objective against each nuisance key, one panel per arm; a range's outer 10% shaded.
- ``curves.png``: validation loss against step of each arm's best configuration (mean over seeds, band min to max).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from matplotlib.figure import Figure
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from recipe.sweeps.compare import _band, _mean_std
from recipe.sweeps.report import OVERRIDES_ATTR, command, markdown_table
from recipe.sweeps.runs import Job, read_job
from recipe.sweeps.stats import Summary, significance
from recipe.sweeps.study import Arm

EDGE = 0.1  # the outer fraction of a range where a best trial means the range was too narrow
TOP = 3  # the best trials of an arm that the edge check looks at
FILES = ("study.md", "study.csv", "isolation.png", "axes.png", "curves.png")


@dataclass
class ArmResult:
    """One arm's search (its Optuna study) and the run folders of its best configuration, one per seed; an arm none
    of whose trials completed has no seed folders, and ``failure`` says why."""

    arm: Arm
    study: optuna.Study
    seed_folders: list[Path]
    failure: str | None = None

    def __post_init__(self) -> None:
        self.jobs: list[Job] = [read_job(folder, []) for folder in self.seed_folders]
        self.values = [job.value for job in self.jobs if job.status == "completed" and job.value is not None]
        self.summary = Summary.of(self.values)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    @property
    def time_s(self) -> float:
        """The arm's wall time: its trials and its seed runs."""
        trials = sum(t.duration.total_seconds() for t in self.study.get_trials(deepcopy=False) if t.duration)
        return trials + sum(job.duration_s or 0.0 for job in self.jobs)


def _short(value: float) -> str:
    """A range's end as a person writes it: ``1e-5``, ``3e-3``, ``0.03``, ``10``."""
    if value == 0 or 0.01 <= abs(value) < 1e4:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _position(value: float, dist: FloatDistribution | IntDistribution) -> float:
    """Where ``value`` sits in the range, 0 at the low end, 1 at the high end; on a log scale for a log range."""
    low, high, x = (math.log(v) for v in (dist.low, dist.high, value)) if dist.log else (dist.low, dist.high, value)
    return (x - low) / (high - low) if high > low else 0.5


def edge_flags(result: ArmResult, maximize: bool) -> list[str]:
    """One line per nuisance key whose ``TOP`` best trials of the arm all sit in the outer ``EDGE`` of its range."""
    best = sorted(result.trials, key=lambda t: t.value, reverse=maximize)[:TOP]
    flags = []
    for key, dist in best[0].distributions.items() if best else ():
        if not isinstance(dist, FloatDistribution | IntDistribution):
            continue
        positions = [_position(t.params[key], dist) for t in best if key in t.params]
        for side, at_edge in (
            ("low", all(p <= EDGE for p in positions)),
            ("high", all(p >= 1 - EDGE for p in positions)),
        ):
            if positions and at_edge:
                span = f"[{_short(dist.low)}, {_short(dist.high)}]"
                flags.append(f"{result.arm.label}: best {key} at the {side} edge of {span}: widen the range")
    return flags


def _rows(results: Sequence[ArmResult], best: ArmResult) -> list[dict[str, str]]:
    rows = []
    for r in results:
        welch = "" if r is best or not r.values else significance(r.arm.label, r.values, best.arm.label, best.values)
        trial = r.trials and r.study.best_trial
        rows.append(
            {
                "arm": r.arm.label,
                "best trial (search)": f"{trial.value:.4f} (trial {trial.number})" if trial else f"none: {r.failure}",
                "best config over seeds": _mean_std(r.summary),
                "n": str(len(r.values)),
                "vs the best arm (Welch)": "best" if r is best else welch.split(": ", 1)[-1],
                "time (s)": f"{r.time_s:.0f}",
            }
        )
    return rows


def _isolation_plot(results: Sequence[ArmResult], metric: str, path: Path) -> None:
    fig = Figure(figsize=(1.6 * len(results) + 3, 4))
    ax = fig.subplots()
    for i, r in enumerate(results):
        ax.scatter([i] * len(r.values), r.values, color="C0", alpha=0.5, label="a seed" if i == 0 else None)
        if r.values:
            std = 0.0 if math.isnan(r.summary.std) else r.summary.std
            ax.errorbar(
                i, r.summary.mean, yerr=std, fmt="o", color="C1", capsize=6, label="mean ± std" if i == 0 else None
            )
        if r.trials:
            ax.scatter(
                i + 0.15, r.study.best_value, marker="x", color="C2", label="best trial (search)" if i == 0 else None
            )
    ax.set_xticks(range(len(results)), [r.arm.label for r in results], rotation=20, fontsize=8)
    ax.set(ylabel=metric, xlim=(-0.5, len(results) - 0.5))
    ax.set_title("isolation plot: each arm, its nuisance keys tuned away", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _axis_plots(results: Sequence[ArmResult], metric: str, path: Path) -> None:
    keys = list(dict.fromkeys(k for r in results for t in r.trials for k in t.distributions))
    fig = Figure(figsize=(3.2 * len(results), 2.6 * max(len(keys), 1)))
    axes = np.atleast_2d(fig.subplots(max(len(keys), 1), len(results), squeeze=False))
    for col, r in enumerate(results):
        for row, key in enumerate(keys):
            ax = axes[row, col]
            points = [(t.params[key], t.value) for t in r.trials if key in t.params]
            dist = next((t.distributions[key] for t in r.trials if key in t.distributions), None)
            if points:
                ax.scatter(*zip(*points, strict=True), s=12)
            if isinstance(dist, FloatDistribution | IntDistribution):
                if dist.log:
                    ax.set_xscale("log")
                for low, high in ((0.0, EDGE), (1 - EDGE, 1.0)):
                    ends = [_value_at(dist, p) for p in (low, high)]
                    ax.axvspan(*ends, color="C3", alpha=0.1)
            ax.set_title(f"{r.arm.label}", fontsize=8)
            ax.set_xlabel(key, fontsize=8)
            ax.set_ylabel(metric, fontsize=8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _value_at(dist: FloatDistribution | IntDistribution, position: float) -> float:
    """The value at ``position`` (0 to 1) of the range: the inverse of ``_position``."""
    if dist.log:
        return math.exp(math.log(dist.low) + position * (math.log(dist.high) - math.log(dist.low)))
    return dist.low + position * (dist.high - dist.low)


def _curves(results: Sequence[ArmResult], path: Path) -> None:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for i, r in enumerate(results):
        curves = [job.curves["val/loss"] for job in r.jobs if job.curves.get("val/loss")]
        if not curves:
            continue
        steps, values = _band(curves)
        ax.plot(steps, values.mean(axis=0), color=f"C{i % 10}", label=f"{r.arm.label} (n={len(curves)})")
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=f"C{i % 10}", alpha=0.2)
    ax.set(xlabel="step", ylabel="validation loss", title="each arm's best configuration: mean over seeds, min to max")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_study_report(folder: Path, results: Sequence[ArmResult], metric: str, direction: str) -> list[str]:
    """Write ``FILES`` into ``folder``; return the lines to print: the table, the edge flags, where it all went."""
    maximize = direction == "maximize"
    ranked = [r for r in results if r.values]
    best = (max if maximize else min)(ranked, key=lambda r: r.summary.mean) if ranked else results[0]
    rows = _rows(results, best)
    flags = [flag for r in results for flag in edge_flags(r, maximize)]
    table = markdown_table(rows)
    lines = [
        f"# Study: {metric} ({direction}) by {', '.join(dict.fromkeys(o.split('=')[0] for o in best.arm.overrides))}",
        "",
        f"Each arm: {len(results[0].study.trials)} trials over its nuisance keys, then its best configuration over "
        f"{len(best.seed_folders)} seeds; the Welch test compares each arm's seeds with the best arm's.",
        "",
        table,
        *(["Edge flags (a best trial at the edge of its range means the range was wrong):", ""] if flags else []),
        *[f"- {flag}" for flag in flags],
        "",
        "Best configuration of each arm:",
        "",
        *[f"    {command(r.study.best_trial.user_attrs.get(OVERRIDES_ATTR, []))}" for r in results if r.trials],
        "",
        "![isolation](isolation.png)",
        "![axes](axes.png)",
        "![curves](curves.png)",
        "",
    ]
    (folder / "study.md").write_text("\n".join(lines))
    with open(folder / "study.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], "values"])
        writer.writeheader()
        writer.writerows(
            {**row, "values": " ".join(f"{v:.6g}" for v in r.values)} for row, r in zip(rows, results, strict=True)
        )
    _isolation_plot(results, metric, folder / "isolation.png")
    _axis_plots(results, metric, folder / "axes.png")
    _curves(results, folder / "curves.png")
    return [
        *table.splitlines(),
        *flags,
        f"Study report: {folder / 'study.md'} (and .csv, isolation.png, axes.png, curves.png)",
    ]

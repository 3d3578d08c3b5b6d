"""The comparison every sweep ends with: one row per configuration, seeds and folds collapsed, best first.

Writes ``comparison.md``, ``comparison.csv`` and ``comparison.png`` into a multirun folder, from what its jobs
left on disk (``recipe.sweeps.runs``). The Hydra callback runs it after each ``-m`` sweep; by hand it rebuilds the
comparison of any multirun folder, finished or not, wherever its jobs ran:

    python -m recipe.sweeps.compare logs/train/multiruns/<time> [--direction minimize]
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from recipe.errors import config_error
from recipe.sweeps.report import command, markdown_table
from recipe.sweeps.runs import Curve, Job, read_sweep, sweep_settings
from recipe.sweeps.stats import Summary, significance

DIRECTIONS = ("maximize", "minimize")
FILES = ("comparison.md", "comparison.csv", "comparison.png")


def guess_direction(metric: str) -> str:
    """``minimize`` for a loss, an error or a time; ``maximize`` for anything else (accuracy, F1, ...)."""
    return "minimize" if any(word in metric for word in ("loss", "err", "time")) else "maximize"


@dataclass
class Row:
    """One configuration and all its jobs (its seeds and folds)."""

    config: tuple[str, ...]
    label: str
    optimized: str  # the metric whose value each job returned
    jobs: list[Job] = field(default_factory=list)

    @property
    def completed(self) -> list[Job]:
        return [job for job in self.jobs if job.status == "completed"]

    def values(self, metric: str) -> list[float]:
        """``metric`` of each completed job: the value it returned for the optimized one, else its last logged."""
        returned = metric == self.optimized
        found = [job.value if returned and job.value is not None else job.metrics.get(metric) for job in self.completed]
        return [float(v) for v in found if v is not None]


@dataclass
class Comparison:
    """The configurations of a sweep ranked by ``metric``; the sentences compare each with the best."""

    metric: str
    direction: str
    rows: list[Row]
    jobs: list[Job]
    test_metrics: list[str]
    sentences: list[str]
    best_command: str | None


def _labels(configs: Sequence[tuple[str, ...]]) -> list[str]:
    """Each configuration by the overrides that differ between them (all of them when there is one)."""
    common = set.intersection(*(set(c) for c in configs)) if len(configs) > 1 else set()
    return [" ".join(o for o in config if o not in common) or "(defaults)" for config in configs]


def compare(jobs: Sequence[Job], metric: str, direction: str) -> Comparison:
    """Group ``jobs`` by configuration, rank the groups by their mean ``metric``, test each against the best."""
    if direction not in DIRECTIONS:
        raise config_error("direction", direction, " or ".join(DIRECTIONS))
    configs = list(dict.fromkeys(job.config for job in jobs))
    rows = [Row(config, label, metric) for config, label in zip(configs, _labels(configs), strict=True)]
    by_config = {row.config: row for row in rows}
    for job in jobs:
        by_config[job.config].jobs.append(job)
    sign = -1 if direction == "maximize" else 1

    def rank(row: Row) -> tuple[bool, float]:
        values = row.values(metric)
        return (not values, sign * Summary.of(values).mean if values else 0.0)

    rows.sort(key=rank)
    ranked = [row for row in rows if row.values(metric)]
    sentences = []
    if ranked and len(ranked[0].values(metric)) < 2:
        sentences.append(f"{ranked[0].label} ran once: its lead is not tested against the seed noise (run seeds)")
    elif ranked:
        best = ranked[0].values(metric)
        sentences += [significance(row.label, row.values(metric), ranked[0].label, best) for row in ranked[1:]]
    tests = sorted({m for job in jobs if job.status == "completed" for m in job.metrics if m.startswith("test/")})
    best_command = command(ranked[0].config) if ranked else None
    return Comparison(metric, direction, rows, list(jobs), [m for m in tests if m != metric], sentences, best_command)


def _columns(comparison: Comparison) -> list[str]:
    return [comparison.metric, *comparison.test_metrics]


def _time(row: Row) -> Summary:
    return Summary.of([job.duration_s for job in row.completed if job.duration_s is not None])


def _plain(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


def _csv(comparison: Comparison, path: Path) -> None:
    header = ["configuration", "n", "not_completed"]
    header += [f"{name} {stat}" for name in _columns(comparison) for stat in ("mean", "std")]
    header += ["time_s mean", "command"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in comparison.rows:
            cells: list[str | int] = [row.label, len(row.completed), len(row.jobs) - len(row.completed)]
            for name in _columns(comparison):
                summary = Summary.of(row.values(name))
                cells += [_plain(summary.mean), _plain(summary.std)]
            writer.writerow([*cells, _plain(_time(row).mean), command(row.config)])


def _mean_std(summary: Summary) -> str:
    if summary.n == 0:
        return ""
    return f"{summary.mean:.4f}" + ("" if math.isnan(summary.std) else f" ± {summary.std:.4f}")


def _markdown(comparison: Comparison) -> str:
    jobs = comparison.jobs
    counts = ", ".join(f"{sum(j.status == s for j in jobs)} {s}" for s in dict.fromkeys(j.status for j in jobs))
    table = [
        {
            "configuration": row.label,
            "n": len(row.completed),
            **{name: _mean_std(Summary.of(row.values(name))) for name in _columns(comparison)},
            "time per run (s)": f"{_time(row).mean:.1f}" if row.completed else "",
        }
        for row in comparison.rows
    ]
    lines = [
        f"# Sweep comparison: {comparison.metric} ({comparison.direction})",
        "",
        f"{len(jobs)} jobs: {counts}. One row per configuration, best first; mean ± standard deviation over its "
        "n completed runs (seeds and folds).",
        "",
        markdown_table(table) if table else "No jobs yet.\n",
    ]
    if comparison.best_command:
        lines += [f"Best: {comparison.rows[0].label}. Train it with:", "", f"    {comparison.best_command}", ""]
    if comparison.sentences:
        lines += [
            "Against the best (difference of the means ± half-width of its 95% confidence interval, Welch's t-test):",
            "",
            *[f"- {sentence}" for sentence in comparison.sentences],
            "",
        ]
    unfinished = [job for job in jobs if job.status != "completed"]
    if unfinished:
        lines += ["Jobs that did not complete:", ""]
        lines += [f"- {job.folder.name} ({job.status}){': ' + job.reason if job.reason else ''}" for job in unfinished]
        lines.append("")
    lines += ["![comparison](comparison.png)", ""]
    return "\n".join(lines)


def _band(curves: Sequence[Curve]) -> tuple[list[int], np.ndarray]:
    """The steps every curve has, and the values there (one row per curve)."""
    steps = sorted(set.intersection(*(set(step for step, _ in curve) for curve in curves)))
    return steps, np.array([[dict(curve)[step] for step in steps] for curve in curves])


def _plot(comparison: Comparison, path: Path) -> None:
    """Validation loss and LR against steps, one colour per configuration: the mean over its runs, min to max as
    a band."""
    fig = Figure(figsize=(13, 4.5))  # no pyplot: no GUI backend, no global figure state
    axes = fig.subplots(1, 2)
    for index, row in enumerate(comparison.rows):
        for ax, name in zip(axes, ("val/loss", "lr"), strict=True):
            curves = [job.curves[name] for job in row.completed if job.curves.get(name)]
            if not curves:
                continue
            steps, values = _band(curves)
            color = f"C{index % 10}"
            label = f"{row.label[:60]} (n={len(curves)})"
            ax.plot(steps, values.mean(axis=0), color=color, label=label)
            if len(curves) > 1:
                ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)
    for ax, title in zip(axes, ("validation loss", "learning rate"), strict=True):
        ax.set(xlabel="step", ylabel=title, title=f"{title}: mean over seeds, band min to max")
        ax.grid(alpha=0.3)
    if axes[0].lines:
        axes[0].legend(fontsize=7)
    if axes[1].lines:
        axes[1].set_yscale("log", nonpositive="mask")  # SGD's LRs are 10-100x AdamW's; a schedule's final 0 drops
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_comparison(folder: Path, direction: str | None = None) -> Comparison:
    """Read the jobs under ``folder`` and write ``comparison.md``, ``.csv`` and ``.png`` there.

    Args:
        folder: a multirun folder (``logs/<task>/multiruns/<time>``).
        direction: ``maximize`` or ``minimize`` ``optimized_metric``; by default the sweeper's own, else guessed
            from the metric's name (``guess_direction``).
    """
    folder = Path(folder)
    settings = sweep_settings(folder)
    metric = str(settings["optimized_metric"] or "val/acc_best")
    direction = direction or settings["direction"] or guess_direction(metric)
    comparison = compare(read_sweep(folder), metric, direction)
    (folder / "comparison.md").write_text(_markdown(comparison))
    _csv(comparison, folder / "comparison.csv")
    _plot(comparison, folder / "comparison.png")
    return comparison


def summary_lines(comparison: Comparison, folder: Path) -> list[str]:
    """What a finished sweep prints: where the comparison went, the best command, the significance sentences."""
    lines = [f"Comparison: {Path(folder) / 'comparison.md'} (and .csv, .png)"]
    if comparison.best_command:
        lines += [f"Best configuration by {comparison.metric}: train it with:", comparison.best_command]
    return lines + comparison.sentences


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write comparison.md/.csv/.png for a multirun folder.")
    parser.add_argument("folder", type=Path, help="a multirun folder, e.g. logs/train/multiruns/<time>")
    parser.add_argument("--direction", choices=DIRECTIONS, help="default: the sweeper's, else from the metric name")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"no such folder: {args.folder}")
    comparison = write_comparison(args.folder, args.direction)
    print("\n".join(summary_lines(comparison, args.folder)))


if __name__ == "__main__":
    main()

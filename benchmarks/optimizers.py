"""Each optimizer at its own best LR, on one or more experiments: a log grid around the LR its yaml gives (seed 0,
the best by validation accuracy), then several seeds at that LR. Prints a markdown table, a row per optimizer and
experiment (best LR, test accuracy mean ± std, wall time per run), and can save a figure: validation accuracy
against LR (how forgiving each optimizer is), and validation loss and accuracy against steps at each one's best LR.
A best LR at either end of the grid is marked ``(edge)``: a wider grid may find a better one.

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimizers.py [--experiments digits_mlp "mnist1d_cnn key=value"]
    [--grid 3] [--seeds 2] [--figure docs/measurements/optimizers.png] [--set key=value ...] [--optimizers name ...]
    [--results runs.jsonl]

The grid multiplies the LR a run would use (the optimizer's yaml, or an experiment's tuning of its own optimizer;
Muon's ``adamw_lr`` too) by 10^(k/2), k = -(grid // 2) .. grid // 2. Schedule-free
optimizers train with ``scheduler=constant``, the others with the experiment's schedule (Adafactor with onecycle's
momentum cycling off: it has no momentum). ``--set`` passes overrides
on to every run, e.g. ``--set trainer.max_epochs=10`` for shorter runs or ``--set data=npz data.path=my.npz`` for
your own data; an experiment's own overrides follow its name in the same argument. An optimizer that cannot train a
model (Muon without a hidden weight matrix) gets a row saying why. ``--results`` keeps each optimizer's measurements
as it finishes and reuses them: an interrupted table resumes, and several processes, each given some
``--optimizers``, fill one file; a last call naming them all prints the whole table and figure without training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
from filelock import FileLock
from matplotlib import colormaps
from matplotlib.figure import Figure
from omegaconf import open_dict
from pages import PAGES, write_page

from recipe.cli.config import PROJECT_ROOT, compose_config
from recipe.errors import ConfigError

sys.path.insert(0, str(PROJECT_ROOT / "src"))  # src/train.py
from train import train

QUIET = ["~callbacks.progress_bar", "~callbacks.model_summary", "~logger", "~callbacks.lr_monitor"]
CONSTANT = ("schedulefree_adamw", "schedulefree_sgd")
NO_MOMENTUM = ("adafactor",)  # nothing for onecycle to cycle: its cycle_momentum is turned off for these


class ValCurve(L.Callback):
    """Records ``(optimizer steps, val/loss, val/acc)`` after each validation of a fit (the sanity check skipped)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float, float]] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            self.points.append((trainer.global_step, float(metrics["val/loss"]), float(metrics["val/acc"])))


@dataclass
class Run:
    """One training run: best validation accuracy, test accuracy, wall seconds and the validation curve."""

    val: float
    test: float
    seconds: float
    curve: list[tuple[int, float, float]] = field(default_factory=list)


def run(experiment: str, optimizer: str, factor: float, seed: int, overrides: list[str]) -> Run:
    """Train ``optimizer`` at its yaml's LR times ``factor`` on ``experiment``."""
    with tempfile.TemporaryDirectory() as out:
        if optimizer in CONSTANT:  # no decay schedule, so no scheduler options of the experiment's either
            overrides = ["scheduler=constant", *(o for o in overrides if not o.startswith("scheduler."))]
        paths = [f"paths.output_dir={out}", f"paths.log_dir={out}"]
        cfg = compose_config(
            f"experiment={experiment}", f"optimizer={optimizer}", f"seed={seed}", *paths, *QUIET, *overrides
        )
        with open_dict(cfg):
            cfg.optimizer.lr *= factor
            if "adamw_lr" in cfg.optimizer:
                cfg.optimizer.adamw_lr *= factor
            if optimizer in NO_MOMENTUM and cfg.scheduler.get("cycle_momentum"):
                cfg.scheduler.cycle_momentum = False
        curve = ValCurve()
        start = time.perf_counter()
        metrics = train(cfg, extra_callbacks=[curve])
        seconds = time.perf_counter() - start
        return Run(float(metrics["val/acc_best"]), float(metrics["test/acc"]), seconds, curve.points)


def measure(name: str, experiment: str, args: argparse.Namespace) -> dict:
    """``name`` on ``experiment`` (its name, then its overrides): the LR grid at seed 0, then the other seeds at the
    best LR, as a JSON-able record (``error`` instead where the optimizer cannot train the model)."""
    title, *overrides = experiment.split()
    factors = [10 ** (k / 2) for k in range(-(args.grid // 2), args.grid // 2 + 1)]
    base_lr = compose_config(f"experiment={title}", f"optimizer={name}", *overrides, *args.set).optimizer.lr
    record = {**record_key(name, experiment, args), "base_lr": base_lr}
    try:
        grid = [run(title, name, f, 0, [*overrides, *args.set]) for f in factors]
    except ConfigError as err:
        return {**record, "error": str(err)}
    best = max(range(len(factors)), key=lambda i: grid[i].val)
    seeds = [run(title, name, factors[best], s, [*overrides, *args.set]) for s in range(1, args.seeds)]
    return {
        **record,
        "factors": factors,
        "best": best,
        "grid_runs": [asdict(r) for r in grid],
        "more_seeds": [asdict(r) for r in seeds],
    }


def record_key(name: str, experiment: str, args: argparse.Namespace) -> dict:
    """What makes two measurements the same: reused from ``--results`` only if all of it matches."""
    return {"optimizer": name, "experiment": experiment, "set": args.set, "grid": args.grid, "seeds": args.seeds}


def table_row(record: dict) -> str:
    """The markdown row: best LR (``(edge)`` at either end of the grid), test accuracy mean ± std, time per run."""
    title, name = record["experiment"].split()[0], record["optimizer"]
    if "error" in record:
        return f"| {title} | `{name}` | | does not apply: {record['error']} | |"
    factors, best = record["factors"], record["best"]
    runs = [record["grid_runs"][best], *record["more_seeds"]]
    accs = [100 * r["test"] for r in runs]
    spread = f" ± {statistics.stdev(accs):.1f}" if len(accs) > 1 else ""
    seconds = statistics.mean(r["seconds"] for r in runs)
    edge = " (edge)" if len(factors) > 1 and best in (0, len(factors) - 1) else ""  # widen the grid
    lr = record["base_lr"] * factors[best]
    return f"| {title} | `{name}` | {lr:.2g}{edge} | {statistics.mean(accs):.1f}{spread}% | {seconds:.0f} s |"


def draw(record: dict, axes: list, color: tuple) -> None:
    """Validation accuracy against LR, and the best LR's validation loss and accuracy against steps, in ``color``."""
    title, name = record["experiment"].split()[0], record["optimizer"]
    axes[0].set(xscale="log", xlabel="learning rate", ylabel="best val accuracy (%, seed 0)", title=title)
    axes[1].set(yscale="log", xlabel="optimizer steps", ylabel="val loss (best lr, seed 0)", title=title)
    axes[2].set(xlabel="optimizer steps", ylabel="val accuracy (%, best lr, seed 0)", title=title)
    if "error" in record:
        return
    lrs = [record["base_lr"] * f for f in record["factors"]]
    axes[0].plot(lrs, [100 * r["val"] for r in record["grid_runs"]], marker=".", color=color)
    steps, losses, val_accs = zip(*record["grid_runs"][record["best"]]["curve"], strict=True)
    axes[1].plot(steps, losses, color=color, label=name)
    axes[2].plot(steps, [100 * a for a in val_accs], color=color)
    axes[1].legend(fontsize="x-small", ncols=2)


class Results:
    """The records of ``--results`` (JSON lines): earlier ones are reused, new ones appended as each is measured,
    under a file lock, so several processes (each given some ``--optimizers``) can fill one file, and a
    last call with all of them prints the whole table and figure without training again."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records = (
            [json.loads(line) for line in path.read_text().splitlines() if line] if path and path.exists() else []
        )

    def get(self, key: dict) -> dict | None:
        return next((r for r in reversed(self.records) if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, record: dict) -> None:
        self.records.append(record)
        if self.path:
            with FileLock(f"{self.path}.lock"), self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizers", nargs="*", default=[], help="default: every yaml in conf/optimizer/")
    parser.add_argument(
        "--experiments", nargs="+", default=["digits_mlp", "mnist1d_cnn"], help="each an experiment, then overrides"
    )
    parser.add_argument("--grid", type=int, default=3, help="LRs tried, half a decade apart")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--figure", type=Path, help="save the LR sweep and the validation curves here")
    parser.add_argument("--set", nargs="*", default=[], help="more overrides, for every run")
    parser.add_argument("--results", type=Path, help="JSON lines: reuse the measurements there, append new ones")
    args = parser.parse_args()
    known = sorted(p.stem for p in (PROJECT_ROOT / "conf" / "optimizer").glob("*.yaml"))
    names = args.optimizers or known
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"--optimizers {unknown[0]!r}: choose from {known}")
    results = Results(args.results)
    rows = len(args.experiments)
    figure = Figure(figsize=(15, 4.2 * rows), layout="constrained")
    axes = figure.subplots(rows, 3, squeeze=False)
    lines = [
        f"| experiment | optimizer | best lr | test accuracy ({args.seeds} seeds) | time per run |",
        "|---|---|---|---|---|",
    ]
    print(*lines, sep="\n")
    colors = colormaps["tab20"].colors  # one color per optimizer, the same in every panel
    for i, name in enumerate(names):  # optimizer by optimizer: an interrupted run still has whole rows and a figure
        for experiment, row in zip(args.experiments, axes, strict=True):
            record = results.get(record_key(name, experiment, args))
            if record is None:
                record = measure(name, experiment, args)
                results.add(record)
            lines.append(table_row(record))
            print(lines[-1], flush=True)
            draw(record, list(row), colors[i % len(colors)])
        if args.figure:
            figure.savefig(args.figure, dpi=90)
    if args.figure and args.figure.resolve().parent == PAGES.resolve():
        lines += [
            "",
            f"![validation accuracy against LR, and validation loss and accuracy against steps]({args.figure.name})",
        ]
    experiments = "_".join(e.split()[0] for e in args.experiments)
    write_page(f"optimizers_{experiments}", f"Which optimizer wins: {experiments}", "\n".join(lines))


if __name__ == "__main__":
    main()

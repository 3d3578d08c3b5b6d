"""Ray Tune against the Optuna sweeper on the digits searches, and what Ray costs.

    .venv/bin/python benchmarks/ray_tune.py [--trials 16] [--epochs 20] [--seeds 3] [--cpus 2] [override ...]

1. ASHA on Ray against the Optuna sweeper with its median pruner: ``--trials`` trials each of
   ``hparams_search=digits_optuna``; best ``val/acc_best`` and wall time.
2. PBT with 4 members against 4 independent trials (FIFO) of the same length and the same starting ranges
   (``hparams_search=digits_ray``, random starts): best ``val/acc_best`` over ``--seeds`` seeds of the whole
   search, and the plain run replaying the last PBT search's best member (``pbt_history.md``).
3. Ray's fixed cost: the wall time of a one-trial search and the added time per trial (one trial at a time),
   for each sweeper.

Writes docs/measurements/ray_tune.md. Each search is a ``python src/train.py -m ...`` subprocess, as users run it.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pages import write_page

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["++trainer.enable_progress_bar=false", "~callbacks.model_summary"]
METRIC = "val/acc_best"


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` from the project root, its output in ``log``; return its wall seconds."""
    started = time.perf_counter()
    with open(log, "w") as out:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def search(folder: Path, *overrides: str) -> tuple[float, float]:
    """One ``-m`` search into ``folder``; its wall seconds and the best ``val/acc_best`` of its trials."""
    cmd = [sys.executable, "src/train.py", "-m", *QUIET, *overrides, f"hydra.sweep.dir={folder}"]
    timing = folder.with_suffix(".wall")
    if not timing.is_file():  # a search finished by an earlier call with the same --work is not run again
        timing.write_text(str(run(cmd, folder.with_suffix(".log"))))
    wall = float(timing.read_text())
    with open(folder / "trials.csv") as f:
        values = [float(row[METRIC]) for row in csv.DictReader(f) if row.get(METRIC)]
    return wall, max(values)


def replay(folder: Path) -> float:
    """Run the replay command of ``folder``'s ``pbt_history.md``; the plain run's ``val/acc_best``."""
    command = re.search(r"```bash\n(.*)\n```", (folder / "pbt_history.md").read_text()).group(1)
    run_dir = folder / "replay"
    cmd = [sys.executable, *shlex.split(command)[1:], f"hydra.run.dir={run_dir}"]  # QUIET: in the search's keys
    run(cmd, folder.with_name(folder.name + "_replay.log"))
    return _best(run_dir)


def _best(run_dir: Path) -> float:
    """``val/acc_best`` a finished run logged last, from its TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [events] = {p.parent for p in run_dir.rglob("events.out.tfevents.*")} or [run_dir]
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    return accumulator.Scalars(METRIC)[-1].value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--work", type=Path, help="searches' folder; one that holds finished searches reuses them")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ray-tune-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    common = [f"trainer.max_epochs={args.epochs}", *args.overrides]
    ray = ["hydra/sweeper=ray_tune", f"hydra.sweeper.num_cpus={args.cpus}"]

    optuna_wall, optuna_best = search(
        work / "optuna_median", "hparams_search=digits_optuna", "hydra/sweeper/pruner=median",
        "hydra.sweeper.storage=null", f"hydra.sweeper.n_trials={args.trials}", *common,
    )  # fmt: skip
    asha_wall, asha_best = search(
        work / "ray_asha", "hparams_search=digits_optuna", *ray, "hydra.sweeper.scheduler=asha",
        f"hydra.sweeper.n_trials={args.trials}", *common,
    )  # fmt: skip

    population = ["hparams_search=digits_ray", *ray, "hydra.sweeper.search_alg=random", "hydra.sweeper.n_trials=4"]
    pbt, fifo = [], []
    for seed in range(args.seeds):
        pbt.append(search(work / f"pbt_{seed}", *population, "hydra.sweeper.scheduler=pbt", f"seed={seed}", *common))
        fifo.append(search(work / f"fifo_{seed}", *population, "hydra.sweeper.scheduler=fifo", f"seed={seed}", *common))
    replayed = replay(work / f"pbt_{args.seeds - 1}")

    cost = {}
    sweepers = {"Optuna": ["hydra.sweeper.storage=null"], "Ray": [*ray, "hydra.sweeper.max_concurrent_trials=1"]}
    for name, sweeper in sweepers.items():
        walls = [
            search(work / f"cost_{name}_{n}", "hparams_search=digits_optuna", *sweeper, f"hydra.sweeper.n_trials={n}",
                   "trainer.max_epochs=1", *args.overrides)[0]
            for n in (1, 3)
        ]  # fmt: skip
        cost[name] = (walls[0], (walls[1] - walls[0]) / 2)

    mean = statistics.fmean
    rows = [
        "## ASHA on Ray against the Optuna sweeper's median pruner",
        "",
        f"`hparams_search=digits_optuna`, {args.trials} trials each, `trainer.max_epochs={args.epochs}`.",
        "",
        "| search | best val/acc_best | wall time (s) |",
        "|---|---|---|",
        f"| Optuna, median pruner | {optuna_best:.4f} | {optuna_wall:.0f} |",
        f"| Ray Tune, ASHA | {asha_best:.4f} | {asha_wall:.0f} |",
        "",
        "## PBT with 4 members against 4 independent trials",
        "",
        f"`hparams_search=digits_ray`, random starts, {args.epochs} epochs each, {args.seeds} seed(s) of the search.",
        "",
        "| search | best val/acc_best per seed | mean | wall time, mean (s) |",
        "|---|---|---|---|",
        f"| PBT, 4 members | {', '.join(f'{b:.4f}' for _, b in pbt)} | {mean(b for _, b in pbt):.4f} | "
        f"{mean(w for w, _ in pbt):.0f} |",
        f"| 4 independent trials | {', '.join(f'{b:.4f}' for _, b in fifo)} | {mean(b for _, b in fifo):.4f} | "
        f"{mean(w for w, _ in fifo):.0f} |",
        "",
        f"The last PBT search's best member ({pbt[-1][1]:.4f}), replayed as a plain run from scratch with its schedule "
        f"of values (`pbt_history.md`): {replayed:.4f}.",
        "",
        "## Ray's fixed cost",
        "",
        "A search of one trial of one epoch, and each added trial (one at a time), `hparams_search=digits_optuna`.",
        "",
        "| sweeper | one-trial search (s) | per added trial (s) |",
        "|---|---|---|",
        *(f"| {name} | {first:.0f} | {per:.1f} |" for name, (first, per) in cost.items()),
    ]
    text = "\n".join(rows)
    print(text)
    write_page("ray_tune", "Ray Tune against the Optuna sweeper", text)


if __name__ == "__main__":
    main()

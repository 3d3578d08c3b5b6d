"""Pruning's saving: the same seeded Optuna search on digits with a pruner and without one.

    .venv/bin/python benchmarks/pruning.py [--trials 20] [--pruner successive_halving|median|hyperband] [override ...]

Prints the wall time of each search, their ratio, and the best validation accuracy each found. Each search
trains on ``--threads`` CPU threads (1 by default); its CPU time and the epochs it trained are printed too,
as on a shared machine they vary less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState
from pages import write_page

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["++trainer.enable_progress_bar=false", "~callbacks.progress_bar", "~callbacks.model_summary"]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _epochs(study: optuna.Study) -> int:
    """Epochs trained by all trials of ``study`` (each reports once per epoch)."""
    return sum(len(t.intermediate_values) for t in study.trials)


def search(
    pruner: str, trials: int, threads: int, workdir: Path, extra: list[str]
) -> tuple[float, float, optuna.Study]:
    """Run ``hparams_search=digits_optuna`` with ``pruner``; return its wall and CPU seconds and its study."""
    storage = f"sqlite:///{workdir / pruner}.db"
    cmd = [
        sys.executable, str(ROOT / "src" / "train.py"), "-m", "hparams_search=digits_optuna",
        f"hydra/sweeper/pruner={pruner}", f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweeper.storage={storage}", f"paths.log_dir={workdir / pruner}", *QUIET, *extra,
    ]  # fmt: skip
    wall, cpu = time.perf_counter(), _children_cpu_seconds()
    with open(workdir / f"{pruner}.log", "w") as log:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # torch's intra-op threads
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    wall, cpu = time.perf_counter() - wall, _children_cpu_seconds() - cpu
    return wall, cpu, optuna.load_study(study_name="digits_optuna", storage=storage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each search")
    parser.add_argument(
        "--pruner", default="successive_halving", help="the pruner compared with none (conf/hydra/sweeper/pruner)"
    )
    parser.add_argument("overrides", nargs="*", help="overrides for both searches, e.g. trainer.max_epochs=10")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        results = {p: search(p, args.trials, args.threads, Path(tmp), args.overrides) for p in ("none", args.pruner)}
    lines = ["| pruner | wall (s) | CPU (s) | complete | pruned | epochs trained | best val/acc_best |"]
    lines.append(f"|{'---|' * 7}")
    for pruner, (wall, cpu, study) in results.items():
        states = [t.state for t in study.trials]
        complete, pruned = states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED)
        row = [
            pruner,
            f"{wall:.1f}",
            f"{cpu:.1f}",
            complete,
            pruned,
            _epochs(study),
            f"{study.best_value:.4f}",
        ]
        lines.append("| " + " | ".join(map(str, row)) + " |")
    (base_wall, base_cpu, base), (wall, cpu, pruned_study) = results["none"], results[args.pruner]
    gap = 100 * (pruned_study.best_value - base.best_value)
    lines += [
        "",
        f"With pruning / without: wall time {wall / base_wall:.2f}, CPU time {cpu / base_cpu:.2f}, "
        f"epochs {_epochs(pruned_study) / _epochs(base):.2f}.",
        "",
        f"Best val/acc_best with pruning minus without: {gap:+.2f} points.",
    ]
    print(*lines, sep="\n")
    name = "pruning" if args.pruner == "successive_halving" else f"pruning_{args.pruner}"
    write_page(name, f"What pruning saves: {args.pruner}", "\n".join(lines))


if __name__ == "__main__":
    main()

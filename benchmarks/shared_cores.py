"""Two training runs on the same cores: what they do to each other under each thread setting.

    python benchmarks/shared_cores.py                              # experiment=digits_mlp, 2 rounds
    python benchmarks/shared_cores.py --experiment mnist1d_cnn --rounds 3

Each setting starts one run alone, or two identical runs at the same moment (two parallel trials, or a user's
other job beside a run), and times the whole ``python src/train.py experiment=<name>`` command:

- the template's defaults: one torch thread per core in each run (two runs oversubscribe the cores) and
  ``OMP_WAIT_POLICY=PASSIVE`` (``recipe.cli.openmp``: waiting threads sleep);
- ``OMP_WAIT_POLICY=ACTIVE``: waiting threads spin, as libgomp's own default does for a while before sleeping;
- ``threads=<cores // 2>`` (``torch.set_num_threads``), the cores split between the runs, as
  ``hydra.sweeper.n_jobs`` does for its workers.

Settings alternate round by round; the table shows medians, and the throughput of two runs at once against two
runs one after the other with the defaults (above 1: sharing the cores pays). Prints a table, never fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pages import write_page

ROOT = Path(__file__).resolve().parents[1]
CORES = os.cpu_count() or 1
ACTIVE = {"OMP_WAIT_POLICY": "ACTIVE"}
SETTINGS = {  # name: (runs at once, environment, overrides)
    "alone, defaults": (1, {}, []),
    "alone, OMP_WAIT_POLICY=ACTIVE": (1, ACTIVE, []),
    "alone, threads=1": (1, {}, ["threads=1"]),
    "two at once, defaults": (2, {}, []),
    "two at once, OMP_WAIT_POLICY=ACTIVE": (2, ACTIVE, []),
    f"two at once, threads={max(1, CORES // 2)} each": (2, {}, [f"threads={max(1, CORES // 2)}"]),
}


def run_together(count: int, env: dict[str, str], overrides: list[str], experiment: str, tmp: str) -> list[float]:
    """Wall seconds of each of ``count`` identical training commands started at once."""
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    environment.update(env)
    processes, started = [], time.perf_counter()
    for _ in range(count):
        run_dir = tempfile.mkdtemp(dir=tmp)
        cmd = [sys.executable, "src/train.py", f"experiment={experiment}", f"hydra.run.dir={run_dir}", *overrides]
        cmd += ["~callbacks.progress_bar", "logger=csv"]
        processes.append(subprocess.Popen(cmd, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL))
    walls = [0.0] * count
    for i, process in enumerate(processes):
        process.wait()
        walls[i] = time.perf_counter() - started
        if process.returncode != 0:
            sys.exit(f"failed: experiment={experiment} {' '.join(overrides)} (exit {process.returncode})")
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="digits_mlp")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        run_together(1, {}, [], args.experiment, tmp)  # warm-up: data cache, file cache
        for _ in range(args.rounds):
            for name, (count, env, overrides) in SETTINGS.items():
                walls[name].append(max(run_together(count, env, overrides, args.experiment, tmp)))
    alone = statistics.median(walls["alone, defaults"])
    lines = [
        f"`python src/train.py experiment={args.experiment}` on {CORES} cores, median of {args.rounds} rounds",
        "",
        "| setting | wall time (the slower run) | throughput vs one after the other |",
        "|---|---:|---:|",
    ]
    for name, (count, _, _) in SETTINGS.items():
        wall = statistics.median(walls[name])
        lines.append(f"| {name} | {wall:.1f} s | {count * alone / wall:.2f} |")
    print("", *lines, sep="\n")
    write_page(f"shared_cores_{args.experiment}", "Two runs on the same cores", "\n".join(lines))


if __name__ == "__main__":
    main()

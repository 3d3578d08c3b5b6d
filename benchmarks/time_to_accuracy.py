"""Wall time of a whole training command, and of its start-up: process start to the first training step.

    python benchmarks/time_to_accuracy.py                       # experiment=mnist1d_cnn, seeds 0, 1, 2
    python benchmarks/time_to_accuracy.py --experiment digits_mlp --seeds 5
    python benchmarks/time_to_accuracy.py --set model.kernel_size=5 data.batch_size=128   # a variant of it

Run i uses ``seed=i``. The start-up is compared with ``python -c "import lightning, hydra, torch"``, the floor any
Lightning + Hydra script pays. Runs alternate between the two commands; the table shows each run, then medians and
the mean test accuracy. Prints a table, never fails.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clocks import FIRST_STEP
from pages import write_page

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = [sys.executable, "-c", "import lightning, hydra, torch"]


def timed(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")}
    start = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return start, result.stdout + result.stderr


def train_run(experiment: str, run_dir: str, overrides: list[str]) -> tuple[float, float, float]:
    """Whole wall time, start-up time and test accuracy of one ``src/train.py`` run."""
    cmd = [sys.executable, "src/train.py", f"experiment={experiment}", f"hydra.run.dir={run_dir}", *overrides]
    cmd += ["+callbacks.first_step._target_=clocks.FirstStepStamp", "trainer.enable_progress_bar=false"]
    cmd += ["~callbacks.progress_bar"]
    start, output = timed(cmd)
    end = time.time()
    first = float(re.search(rf"{FIRST_STEP} ([0-9.]+)", output).group(1))
    accuracy = float(re.search(r"test/acc\s*│\s*([0-9.]+)", output).group(1))
    return end - start, first - start, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="mnist1d_cnn")
    parser.add_argument("--seeds", type=int, default=3, help="runs, with seeds 0, 1, ...")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    args = parser.parse_args()
    imports, runs = [], []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        train_run(args.experiment, f"{tmp}/warmup", args.set)  # generates and caches the data, warms the file cache
        for seed in range(args.seeds):
            start, _ = timed(IMPORTS)
            imports.append(time.time() - start)
            runs.append(train_run(args.experiment, f"{tmp}/{seed}", [*args.set, f"seed={seed}"]))
    command = " ".join(["python src/train.py", f"experiment={args.experiment}", *args.set])
    lines = [
        f"`{command}`, seeds 0 to {args.seeds - 1}",
        "",
        "| seed | process start to first training step | whole command | test acc |",
        "|---:|---:|---:|---:|",
    ]
    for seed, (wall, startup, accuracy) in enumerate(runs):
        lines.append(f"| {seed} | {startup:.2f} s | {wall:.2f} s | {accuracy:.4f} |")
    wall, startup = (statistics.median(values) for values in list(zip(*runs, strict=True))[:2])
    mean_accuracy = statistics.mean(accuracy for _, _, accuracy in runs)
    lines.append(f"| median, mean acc | {startup:.2f} s | {wall:.2f} s | {mean_accuracy:.4f} |")
    floor = statistics.median(imports)
    lines += [
        "",
        f'`python -c "import lightning, hydra, torch"`: {floor:.2f} s (median); start-up / imports: '
        f"{startup / floor:.2f}",
    ]
    print("", *lines, sep="\n")
    write_page(f"time_to_accuracy_{args.experiment}", "Time to accuracy", "\n".join(lines))


if __name__ == "__main__":
    main()

"""Wall time of a whole training command, and of its start-up: process start to the first training step.

    python benchmarks/time_to_accuracy.py                       # experiment=mnist1d_cnn, 3 runs
    python benchmarks/time_to_accuracy.py --experiment digits_mlp --runs 5

The start-up is compared with ``python -c "import lightning, hydra, torch"``, the floor any Lightning + Hydra
script pays. Runs alternate between the two commands; the table shows medians. Prints a table, never fails.
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

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = [sys.executable, "-c", "import lightning, hydra, torch"]


def timed(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")}
    start = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return start, result.stdout + result.stderr


def train_run(experiment: str, run_dir: str) -> tuple[float, float, float]:
    """Whole wall time, start-up time and test accuracy of one ``src/train.py`` run."""
    cmd = [sys.executable, "src/train.py", f"experiment={experiment}", f"hydra.run.dir={run_dir}"]
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
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    imports, runs = [], []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        train_run(args.experiment, f"{tmp}/warmup")  # generates and caches the data set, warms the file cache
        for i in range(args.runs):
            start, _ = timed(IMPORTS)
            imports.append(time.time() - start)
            runs.append(train_run(args.experiment, f"{tmp}/{i}"))
    wall, startup, accuracy = (statistics.median(values) for values in zip(*runs, strict=True))
    floor = statistics.median(imports)
    print(f"\n`python src/train.py experiment={args.experiment}`, median of {args.runs} runs\n")
    print("| measure | seconds | ratio |")
    print("|---|---:|---:|")
    print(f'| `python -c "import lightning, hydra, torch"` | {floor:.2f} | 1.00 |')
    print(f"| process start to first training step | {startup:.2f} | {startup / floor:.2f} |")
    print(f"| whole command (test acc {accuracy:.4f}) | {wall:.2f} | {wall / floor:.2f} |")


if __name__ == "__main__":
    main()

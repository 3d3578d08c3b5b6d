"""``-m hparams_search=auto`` on data no one here wrote, beside the plain defaults and scikit-learn.

The tables, their splits and the other columns are ``own_data.py``'s (scikit-learn's bundled tables written to CSV,
the same split per seed for every method); the search is one more method there: the real command line
(``python src/train.py -m hparams_search=auto data=csv ...``) with ``hydra.sweeper.timeout`` minutes, scored by its
final model (the best configuration retrained on train and validation, then tested). Then the digits as a PNG class
folder through ``data=image_folder model=cnn``: the plain run beside the search. Writes
docs/measurements/auto_search.md.

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/auto_search.py [--minutes 3] [--seeds 0 1] [breast_cancer ... digits_png]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import own_data
from own_data import DATASETS, QUIET, Table, compare_tables, write_digits
from pages import write_page

from recipe.cli.config import PROJECT_ROOT, compose_config
from train import train  # own_data put src/ on the path


def search(overrides: list[str], out: Path, minutes: float) -> dict[str, float]:
    """The test metrics of ``-m hparams_search=auto`` with ``overrides``: the final model's line, the last but one."""
    cmd = [sys.executable, str(PROJECT_ROOT / "src" / "train.py"), "-m", "hparams_search=auto", *overrides]
    cmd += [f"hydra.sweep.dir={out / 'sweep'}", f"hydra.sweeper.timeout={minutes}", "hydra.sweeper.n_trials=500"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT)
    final = [line for line in result.stdout.splitlines() if "] Final model (" in line]
    if result.returncode or not final:
        raise RuntimeError(f"the search failed ({result.returncode}): {result.stderr[-2000:]}")
    trials = len(list((out / "sweep").glob("trial_*_fold0"))) or len(list((out / "sweep").glob("trial_*")))
    print(f"  {final[-1].split('] ', 1)[1]} after {trials} trials", flush=True)
    return {name: float(value) for name, value in re.findall(r"(test/\w+)=([-\d.]+)", final[-1])}


def auto_method(minutes: float) -> own_data.Method:
    """``own_data``'s method signature: a table at one seed and a folder to its test accuracy or R²."""

    def run(table: Table, out: Path) -> float:
        overrides = [o for o in table.overrides(out) if not o.startswith("paths.output_dir=")]  # a folder per trial
        return search(overrides, out, minutes)["test/r2" if table.regression else "test/acc"]

    return run


def digits_png(out: Path, minutes: float, seeds: list[int]) -> list[str]:
    """The digits PNG folder, ``model=cnn``: the plain run and the search, test accuracy over ``seeds``."""
    folder = write_digits(out / "digits_png")
    data = ["data=image_folder", f"data.path={folder}", "data.image_size=8", "data.mode=grayscale", "data.augment=null"]
    common = [*data, "model=cnn", "trainer.precision=32-true", *QUIET, f"paths.log_dir={out}"]
    results: dict[str, list[float]] = {"plain `model=cnn`": [], "`-m hparams_search=auto`": []}
    seconds = dict.fromkeys(results, 0.0)
    for seed in seeds:
        start = time.perf_counter()
        plain = compose_config(*common, f"seed={seed}", f"paths.output_dir={out / f'plain{seed}'}")
        results["plain `model=cnn`"].append(train(plain)["test/acc"])
        seconds["plain `model=cnn`"] += time.perf_counter() - start
        start = time.perf_counter()
        results["`-m hparams_search=auto`"].append(
            search([*common, f"seed={seed}"], out / f"auto{seed}", minutes)["test/acc"]
        )
        seconds["`-m hparams_search=auto`"] += time.perf_counter() - start
    lines = [f"| digits PNG folder, `data=image_folder model=cnn` | test accuracy ({len(seeds)} seeds) | s per run |"]
    lines.append("|---|---|---|")
    for name, accs in results.items():
        spread = f" ± {statistics.stdev(accs):.3f}" if len(accs) > 1 else ""
        lines.append(f"| {name} | {statistics.mean(accs):.3f}{spread} | {seconds[name] / len(seeds):.0f} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=[*DATASETS, "digits_png"])
    parser.add_argument("--minutes", type=float, default=3.0, help="hydra.sweeper.timeout of each search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    own_data.SEEDS = tuple(args.seeds)  # compare_tables runs every method over own_data.SEEDS
    methods = {**own_data.METHODS, "`-m hparams_search=auto`": auto_method(args.minutes)}
    tables = [n for n in args.names if n in DATASETS]
    note = (
        f"Test accuracy (classification) or R² (diabetes), mean ± std over seeds {', '.join(map(str, args.seeds))} "
        f"(standard error of the mean in parentheses): fewer seeds than own_data.md's 5, to keep each table within "
        f"10 minutes of search on 2 cores. Every method sees the same split per seed (`benchmarks/own_data.py`). "
        f"`-m hparams_search=auto`: `python src/train.py -m hparams_search=auto data=csv data.path=... "
        f"data.target=target hydra.sweeper.timeout={args.minutes:g}`, scored by its final model (the best "
        f"configuration retrained on train and validation, then tested). Seconds per run: one per method, in the "
        f"order of the columns."
    )
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if tables:
            lines += [note, "", *compare_tables(tables, Path(tmp), methods)]
        if "digits_png" in args.names:
            lines += ["", *digits_png(Path(tmp), args.minutes, args.seeds)]
    write_page("auto_search", "hparams_search=auto on data no one here wrote", "\n".join(lines))


if __name__ == "__main__":
    main()

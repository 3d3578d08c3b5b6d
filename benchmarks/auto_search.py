"""``-m hparams_search=auto`` on data no one here wrote, beside the plain defaults and scikit-learn.

The tables, their splits and the other columns are ``own_data.py``'s (scikit-learn's bundled tables written to CSV,
the same split per seed for every method); the search is one more method there: the real command line
(``python src/train.py -m hparams_search=auto data=csv ...``) with ``hydra.sweeper.timeout`` minutes, scored by its
final model (the best configuration retrained on train and validation, then tested). Then the digits as a PNG class
folder through ``data=image_folder model=cnn``: the plain run beside the search. Writes
docs/measurements/auto_search.md.

Each score is kept in ``--results`` (one JSON line each) as it is measured: a rerun measures only what is missing,
and processes on different tables can fill one file; the page is written from every row the file holds.

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/auto_search.py [--minutes 4] [--seeds 0 1 2 3 4]
    [--results auto.jsonl] [breast_cancer wine digits diabetes digits_png]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import own_data
from own_data import DATASETS, QUIET, Results, Table, compare_tables, summary, write_digits
from pages import write_page

from recipe.cli.config import PROJECT_ROOT, compose_config
from train import train  # own_data put src/ on the path

AUTO = "`-m hparams_search=auto`"


def search(overrides: list[str], out: Path, minutes: float) -> tuple[dict[str, float], dict[str, object]]:
    """The test metrics of ``-m hparams_search=auto`` with ``overrides`` (the final model's line), and notes: that
    line, the trials run and the budget."""
    cmd = [sys.executable, str(PROJECT_ROOT / "src" / "train.py"), "-m", "hparams_search=auto", *overrides]
    cmd += [f"hydra.sweep.dir={out / 'sweep'}", f"hydra.sweeper.timeout={minutes}", "hydra.sweeper.n_trials=500"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT)
    final = [line.split("] ", 1)[1] for line in result.stdout.splitlines() if "] Final model (" in line]
    if result.returncode or not final:
        raise RuntimeError(f"the search failed ({result.returncode}): {result.stderr[-2000:]}")
    trials = len(list((out / "sweep").glob("trial_*_fold0"))) or len(list((out / "sweep").glob("trial_*")))
    print(f"  {final[-1]} after {trials} trials", flush=True)
    metrics = {name: float(value) for name, value in re.findall(r"(test/\w+)=([-\d.]+)", final[-1])}
    return metrics, {"final": final[-1], "trials": trials, "minutes": minutes}


def auto_method(minutes: float) -> own_data.Method:
    """``own_data``'s method signature: a table at one seed and a folder to its test accuracy or R² (with notes)."""

    def run(table: Table, out: Path) -> tuple[float, dict[str, object]]:
        overrides = [o for o in table.overrides(out) if not o.startswith("paths.output_dir=")]  # a folder per trial
        metrics, notes = search(overrides, out, minutes)
        return metrics["test/r2" if table.regression else "test/acc"], notes

    return run


def digits_png(out: Path, minutes: float, seeds: list[int], results: Results) -> list[str]:
    """The digits PNG folder, ``model=cnn``: the plain run and the search, test accuracy over ``seeds``."""
    folder = write_digits(out / "digits_png")
    data = ["data=image_folder", f"data.path={folder}", "data.image_size=8", "data.mode=grayscale", "data.augment=null"]
    common = [*data, "model=cnn", "trainer.precision=32-true", *QUIET, f"paths.log_dir={out}"]

    def plain(seed: int) -> float:
        return train(compose_config(*common, f"seed={seed}", f"paths.output_dir={out / f'plain{seed}'}"))["test/acc"]

    def auto(seed: int) -> tuple[float, dict[str, object]]:
        metrics, notes = search([*common, f"seed={seed}"], out / f"auto{seed}", minutes)
        return metrics["test/acc"], notes

    lines = [f"| digits PNG folder, `data=image_folder model=cnn` | test accuracy ({len(seeds)} seeds) | s per run |"]
    lines.append("|---|---|---|")
    for name, run in {"plain `model=cnn`": plain, AUTO: auto}.items():
        rows = [results.measure("digits_png", name, seed, lambda seed=seed, run=run: run(seed)) for seed in seeds]
        seconds = statistics.mean(row["seconds"] for row in rows)
        lines.append(f"| {name} | {summary([row['score'] for row in rows])} | {seconds:.0f} |")
        print(lines[-1], flush=True)
    return lines


def finals(results: Results, names: list[str]) -> list[str]:
    """Each search's final model as it printed it, with the trials it ran in its budget."""
    rows = [row for key, row in sorted(results.rows.items()) if key[1] == AUTO and key[0] in names]
    return [f"- {row['table']}, seed {row['seed']}, {row['minutes']:g} min: {row['final']} after {row['trials']} trials"
            for row in rows]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=[*DATASETS, "digits_png"])
    parser.add_argument("--minutes", type=float, default=4.0, help="hydra.sweeper.timeout of each search")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(own_data.SEEDS))
    parser.add_argument("--results", type=Path, help="a JSON-lines file keeping every score (resumes a run)")
    args = parser.parse_args()
    own_data.SEEDS = tuple(args.seeds)  # compare_tables runs every method over own_data.SEEDS
    results = Results(args.results)
    methods = {**own_data.METHODS, AUTO: auto_method(args.minutes)}
    tables = [n for n in args.names if n in DATASETS]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if tables:
            lines += [NOTE.format(seeds=len(args.seeds)), "", *compare_tables(tables, Path(tmp), methods, results)]
        if "digits_png" in args.names:
            lines += ["", *digits_png(Path(tmp), args.minutes, args.seeds, results)]
    lines += ["", "Each search's final model (its trial, the epochs it trains, its test metrics):", ""]
    lines += finals(results, args.names)
    write_page("auto_search", "hparams_search=auto on data no one here wrote", "\n".join(lines))


NOTE = (
    "Test accuracy (classification) or R² (diabetes), mean ± std over {seeds} seeds (standard error of the mean in "
    "parentheses). Every method sees the same split per seed (`benchmarks/own_data.py`). {auto}: `python "
    "src/train.py -m hparams_search=auto data=csv data.path=... data.target=target hydra.sweeper.timeout=<minutes>` "
    "(the minutes of each search are listed below), scored by its final model: the best configuration retrained on "
    "train and validation, then tested. Seconds per run: one per method, in the order of the columns, a search's "
    "including its final training. The trials a search ran in its minutes (listed below) vary with what else shared "
    "the cores."
).replace("{auto}", AUTO)

if __name__ == "__main__":
    main()

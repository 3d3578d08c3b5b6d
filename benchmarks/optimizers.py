"""Which optimizer wins: ``-m hparams_search=compare_optimizers`` on each experiment given, and its study report (the
isolation table and plot, the axis plots with their edge flags, the curves, time per arm) as
``docs/measurements/optimizers_<experiment>.md``. The study is the product's own (``docs/studies.md``); this script
only runs it and files the report with the command and the machine.

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimizers.py [--experiments digits_mlp mnist1d_cnn]
    [--set hydra.sweeper.n_trials=6 hydra.sweeper.seeds=2 ...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pages

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("isolation.png", "axes.png", "curves.png")


def study_command(experiment: str, folder: Path, overrides: list[str]) -> list[str]:
    """The study's command line for ``experiment``, its sweep written to ``folder``."""
    return [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "-m",
        "hparams_search=compare_optimizers",
        f"experiment={experiment}",
        f"hydra.sweep.dir={folder}",
        f"paths.log_dir={folder.parent}",
        "++trainer.enable_progress_bar=false",
        *overrides,
    ]


def file_report(experiment: str, folder: Path) -> Path:
    """Copy the study's figures beside the page and write the page from its ``study.md``."""
    body = (folder / "study.md").read_text().split("\n", 1)[1]  # the page has its own title
    for figure in FIGURES:
        shutil.copyfile(folder / figure, pages.PAGES / f"optimizers_{experiment}_{figure}")
        body = body.replace(f"({figure})", f"(optimizers_{experiment}_{figure})")
    return pages.write_page(f"optimizers_{experiment}", f"Which optimizer wins: {experiment}", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", nargs="+", default=["digits_mlp", "mnist1d_cnn"])
    parser.add_argument("--set", nargs="*", default=[], help="more overrides for the study, e.g. its budget")
    args = parser.parse_args()
    pages.PAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in args.experiments:
            folder = Path(tmp) / experiment / "study"
            proc = subprocess.run(study_command(experiment, folder, args.set), cwd=ROOT)
            if proc.returncode != 0:
                raise SystemExit(proc.returncode)
            file_report(experiment, folder)


if __name__ == "__main__":
    main()

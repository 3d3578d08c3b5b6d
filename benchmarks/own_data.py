"""Data no one here wrote: scikit-learn's bundled tables written to CSV and trained through ``data=csv`` with no
other setting (the table defaults), beside scikit-learn's linear model (``LogisticRegression`` / ``RidgeCV``) and
gradient-boosted trees (``HistGradientBoostingClassifier`` / ``Regressor``) fitted on the same training and
validation rows and scored on the same test rows, over 5 seeds. Prints a markdown table: test accuracy or R², mean ±
std (and the standard error of the mean) over the seeds. Then the digits written as a PNG class folder, trained
through ``data=image_folder model=cnn`` beside ``data=digits data.as_image=true model=cnn``, 5 seeds each.

A method is a function of (a table at one split seed, a folder for its outputs) to a test score: ``METHODS`` lists
them, one column each; another method (a search) is one more entry.

``candidates`` instead compares the table defaults that were weighed (``CANDIDATES``: the previous default, plain MLPs
with the table training, TabM) and writes docs/measurements/table_defaults.md.

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/own_data.py [breast_cancer wine digits diabetes digits_png]
OMP_NUM_THREADS=1 .venv/bin/python benchmarks/own_data.py candidates [breast_cancer wine diabetes]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from pages import write_page
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV

from recipe.cli.config import PROJECT_ROOT, compose_config
from recipe.data.table import TableDataModule
from recipe.instantiate import instantiate

sys.path.insert(0, str(PROJECT_ROOT / "src"))  # src/train.py
from train import train

SEEDS = (0, 1, 2, 3, 4)
DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits, "diabetes": load_diabetes}
QUIET = ["~logger", "~callbacks.lr_monitor", "~callbacks.progress_bar", "~callbacks.model_summary"]
QUIET += [
    "~callbacks.run_report",
    "trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]


@dataclass
class Table:
    """A bundled table written to ``path`` as CSV, and its splits for one seed as ``data=csv`` makes them."""

    name: str
    path: Path
    seed: int

    def overrides(self, out: Path) -> list[str]:
        """What a user types for this table and seed, outputs under ``out``, without the progress bar and logs."""
        csv = ["data=csv", f"data.path={self.path}", "data.target=target", f"seed={self.seed}", *QUIET]
        return [*csv, f"paths.output_dir={out}", f"paths.log_dir={out}"]

    @cached_property
    def splits(self) -> tuple[np.ndarray, ...]:
        """``x_fit, y_fit, x_test, y_test``: the training and validation rows together, the test rows, as the data
        module prepares them (standardized numbers; the targets as class indices or standardized values)."""
        datamodule: TableDataModule = instantiate(compose_config(*self.overrides(Path("unused"))).data)
        datamodule.setup()
        (x, y), (xv, yv), (xt, yt) = (datamodule.datasets[s].tensors for s in ("train", "val", "test"))
        return np.concatenate([x, xv]), np.concatenate([y, yv]), xt.numpy(), yt.numpy()

    @property
    def regression(self) -> bool:
        return self.splits[1].dtype.kind == "f"


Method = Callable[[Table, Path], float]  # the table at one seed, a folder for outputs -> test accuracy or R²


class Results:
    """Scores measured before, one JSON line per table, method and seed in ``path`` (``None``: none kept), so that a
    long benchmark resumes where it stopped and processes on different tables can fill one file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path, self.rows = path, {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                self.rows[(row["table"], row["method"], row["seed"])] = row

    def measure(self, table: str, method: str, seed: int, run: Callable[[], float], **notes: object) -> dict:
        """The row of ``table``, ``method`` and ``seed``: ``score`` (what ``run()`` returns, or the first of its
        pair with more notes), ``seconds`` and ``notes``; from the file when it was measured before, else measured
        now and appended to it."""
        key = (table, method, seed)
        if key not in self.rows:
            start = time.perf_counter()
            score = run()
            if isinstance(score, tuple):
                score, more = score
                notes |= more
            row = {"table": table, "method": method, "seed": seed, "score": score, **notes}
            self.rows[key] = row | {"seconds": time.perf_counter() - start}
            if self.path is not None:
                with open(self.path, "a") as f:
                    f.write(json.dumps(self.rows[key]) + "\n")
        return self.rows[key]


def csv_default(*extra: str) -> Method:
    """``python src/train.py data=csv data.path=... data.target=...`` (plus ``extra`` overrides): its test score."""

    def run(table: Table, out: Path) -> float:
        metrics = train(compose_config(*table.overrides(out), *extra))
        return metrics["test/r2" if table.regression else "test/acc"]

    return run


def scikit_learn(regressor: Callable[[], object], classifier: Callable[[], object]) -> Method:
    """A scikit-learn estimator fitted on the training and validation rows, scored on the test rows."""

    def run(table: Table, out: Path) -> float:
        x, y, xt, yt = table.splits
        return (regressor if table.regression else classifier)().fit(x, y).score(xt, yt)

    return run


BASELINES: dict[str, Method] = {
    "linear (LogisticRegression / RidgeCV)": scikit_learn(
        lambda: RidgeCV(alphas=np.logspace(-3, 3, 13)), lambda: LogisticRegression(max_iter=5000)
    ),
    "HistGradientBoosting": scikit_learn(
        lambda: HistGradientBoostingRegressor(random_state=0), lambda: HistGradientBoostingClassifier(random_state=0)
    ),
}
METHODS: dict[str, Method] = {"`data=csv` default": csv_default(), **BASELINES}  # one column each

# The defaults weighed for data=csv, each as the overrides that turn the chosen default (conf/data/csv.yaml) into it.
PREVIOUS = "model=mlp trainer.precision=auto trainer.max_epochs=30 data.batch_size=64"
PREVIOUS += " callbacks.model_checkpoint.monitor=val/acc callbacks.model_checkpoint.mode=max"
CANDIDATES: dict[str, Method] = {
    name: csv_default(*overrides.split())
    for name, overrides in {
        "previous default: MLP 256x256, bf16, batch 64, 30 epochs, best val acc": PREVIOUS,
        "MLP 256x256, table training": "model=mlp",
        "MLP 64x64, dropout 0.3, weight decay 0.1, table training": (
            "model=mlp model.hidden_sizes=[64,64] model.dropout=0.3 optimizer.weight_decay=0.1"
        ),
        "TabM k=16, 2x128, table training (the default)": "",
        "TabM + periodic embeddings": "model.embeddings=periodic",
    }.items()
}


def write_csv(name: str, folder: Path) -> Path:
    """The dataset as a CSV with named columns and a ``target`` column: class names (strings) or real values."""
    data = DATASETS[name]()
    columns = {str(f).replace(" ", "_"): data.data[:, i] for i, f in enumerate(data.feature_names)}
    is_classes = "target_names" in data
    columns["target"] = [str(data.target_names[t]) for t in data.target] if is_classes else data.target.astype(float)
    path = folder / f"{name}.csv"
    pacsv.write_csv(pa.table(columns), path)
    return path


def summary(values: list[float]) -> str:
    """Mean ± std over the seeds, and the standard error of the mean in parentheses (the mean alone of one seed)."""
    if len(values) < 2:
        return f"{values[0]:.3f}"
    std = statistics.stdev(values)
    return f"{statistics.mean(values):.3f} ± {std:.3f} ({std / len(values) ** 0.5:.3f})"


def compare_tables(
    names: list[str], tmp: Path, methods: dict[str, Method] = METHODS, results: Results | None = None
) -> list[str]:
    """One row per table: each method's test score over ``SEEDS`` (the same splits for all), seconds per run;
    ``results`` keeps them (and holds those measured before)."""
    results = results or Results()
    lines = [
        f"| table (rows x features) | metric | {' | '.join(methods)} | s per run |",
        f"|---|---|{'---|' * len(methods)}---|",
    ]
    print(*lines, sep="\n")
    for name in names:
        path = write_csv(name, tmp)
        tables = [Table(name, path, seed) for seed in SEEDS]
        scores, seconds = {}, {}
        for method, run in methods.items():
            rows = [
                results.measure(name, method, t.seed, lambda t=t, run=run: run(t, tmp / f"{t.name}_{t.seed}"))
                for t in tables
            ]
            scores[method] = [row["score"] for row in rows]
            seconds[method] = statistics.mean(row["seconds"] for row in rows)
        shape = DATASETS[name]().data.shape
        metric = "test/r2" if tables[0].regression else "test/acc"
        cells = " | ".join(summary(v) for v in scores.values())
        times = " / ".join(f"{s:.1f}" for s in seconds.values())
        lines.append(f"| {name} ({shape[0]} x {shape[1]}) | {metric} | {cells} | {times} |")
        print(lines[-1], flush=True)
    return lines


def write_digits(folder: Path) -> Path:
    """The 8x8 digits as grayscale PNGs in one folder per class (pixel values 0..16 scaled to 0..240)."""
    x, y = load_digits(return_X_y=True)
    for i, (pixels, label) in enumerate(zip(x, y, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels.reshape(8, 8) * 15).astype(np.uint8)).save(folder / str(label) / f"{i:04d}.png")
    return folder


def digits_png(out: Path) -> list[str]:
    """Test accuracy of the CNN on the digits from a PNG folder and from the arrays, 5 seeds each (in float32, as
    ``experiment=digits_cnn``: bf16 autocast slows these small convolutions on CPU)."""
    folder = write_digits(out / "digits_png")
    sources = {
        "`data=image_folder` (PNG folder)": [
            "data=image_folder", f"data.path={folder}", "data.image_size=8", "data.mode=grayscale",
            "data.val_fraction=0.15", "data.test_fraction=0.15", "data.augment=null",
        ],
        "`data=digits data.as_image=true`": ["data=digits", "data.as_image=true"],
    }  # fmt: skip
    lines = ["| digits, `model=cnn` | test accuracy (5 seeds) | s per run |", "|---|---|---|"]
    print("", *lines, sep="\n")
    for name, overrides in sources.items():
        accs, start = [], time.perf_counter()
        for seed in SEEDS:
            run = [*overrides, "model=cnn", "trainer.precision=32-true", f"seed={seed}", *QUIET]
            run.append(f"paths.output_dir={out / str(seed)}")
            accs.append(train(compose_config(*run, f"paths.log_dir={out}"))["test/acc"])
        seconds = (time.perf_counter() - start) / len(SEEDS)
        lines.append(f"| {name} | {statistics.mean(accs):.3f} ± {statistics.stdev(accs):.3f} | {seconds:.0f} |")
        print(lines[-1], flush=True)
    return lines


def main(names: list[str]) -> None:
    tables, lines = [n for n in names if n in DATASETS], []
    if "candidates" in names:
        with tempfile.TemporaryDirectory() as tmp:
            weighed = tables or ["breast_cancer", "wine", "diabetes"]
            lines = [CANDIDATES_NOTE, "", *compare_tables(weighed, Path(tmp), {**CANDIDATES, **BASELINES})]
        write_page("table_defaults", "Table defaults weighed", "\n".join(lines))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if tables:
            lines += [TABLES_NOTE, "", *compare_tables(tables, Path(tmp))]
        if "digits_png" in names:
            lines += ["", *digits_png(Path(tmp))] if lines else digits_png(Path(tmp))
    write_page("own_data", "On data no one here wrote", "\n".join(lines))


TABLES_NOTE = (
    "Test accuracy (classification) or R² (diabetes), mean ± std over 5 seeds (standard error of the mean in "
    "parentheses); every method sees the same split per seed: scikit-learn's fit on the training and validation "
    "rows together. `data=csv` default: `python src/train.py data=csv data.path=... data.target=target` and nothing "
    "else. Seconds per run: one per method, in the order of the columns, on cores shared with other jobs."
)

CANDIDATES_NOTE = (
    "The defaults weighed for `data=csv`, on the same splits (5 seeds; mean ± std, standard error in parentheses). "
    "Table training: 32-bit floats, batch 32, up to 100 epochs with early stopping on the val loss (patience 10), "
    "the checkpoint of the lowest val loss; AdamW at 1e-3, weight decay 0.01, warmup + cosine. Seconds per run: one "
    "per column, in their order, on cores shared with other jobs."
)

if __name__ == "__main__":
    main(sys.argv[1:] or [*DATASETS, "digits_png"])

"""Data no one here wrote: scikit-learn's bundled tables written to CSV, trained through ``data=csv`` with the
defaults (MLP, AdamW, warmup + cosine, 30 epochs, best checkpoint), beside scikit-learn's ``LogisticRegression``
(classification) and ``RidgeCV`` (regression) fitted on the same training and validation rows, scored on the same
test rows, over 5 seeds. Prints a markdown table: test accuracy or R², mean ± std over the seeds. Then the digits
written as a PNG class folder, trained through ``data=image_folder model=cnn`` beside ``data=digits
data.as_image=true model=cnn`` (the same images from in-memory arrays), 5 seeds each.

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/own_data.py [breast_cancer wine diabetes digits_png]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from pages import write_page
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.linear_model import LogisticRegression, RidgeCV

from recipe.cli.config import PROJECT_ROOT, compose_config
from recipe.data.table import TableDataModule
from recipe.instantiate import instantiate

sys.path.insert(0, str(PROJECT_ROOT / "src"))  # src/train.py
from train import train

SEEDS = (0, 1, 2, 3, 4)
DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes}
QUIET = ["~logger", "~callbacks.lr_monitor", "~callbacks.progress_bar", "~callbacks.model_summary"]
QUIET += [
    "~callbacks.run_report",
    "trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]
REGRESSION = [  # what conf/task/regression.yaml sets
    "module._target_=recipe.tasks.regression.Regressor",
    "~module.label_smoothing",
    "optimized_metric=val/loss_best",
    "callbacks.model_checkpoint.monitor=val/loss",
    "callbacks.model_checkpoint.mode=min",
    "callbacks.model_checkpoint.filename=best",
]


def write_csv(name: str, folder: Path) -> Path:
    """The dataset as a CSV with named columns and a ``target`` column: class names (strings) or real values."""
    data = DATASETS[name]()
    columns = {str(f).replace(" ", "_"): data.data[:, i] for i, f in enumerate(data.feature_names)}
    is_classes = "target_names" in data
    columns["target"] = [str(data.target_names[t]) for t in data.target] if is_classes else data.target.astype(float)
    path = folder / f"{name}.csv"
    pacsv.write_csv(pa.table(columns), path)
    return path


def scores(path: Path, seed: int, out: Path) -> tuple[float, float, str]:
    """(ours, scikit-learn's, metric) on the test rows of ``seed``'s split."""
    overrides = ["data=csv", f"data.path={path}", "data.target=target", f"seed={seed}", *QUIET]
    overrides += [f"paths.output_dir={out}", f"paths.log_dir={out}"]
    cfg = compose_config(*overrides)
    datamodule: TableDataModule = instantiate(cfg.data)
    regression = datamodule.task == "regression"
    metric = "test/r2" if regression else "test/acc"
    ours = train(compose_config(*overrides, *(REGRESSION if regression else [])))[metric]
    datamodule.setup()
    (x, y), (xv, yv), (xt, yt) = (datamodule.datasets[s].tensors for s in ("train", "val", "test"))
    x, y = np.concatenate([x.numpy(), xv.numpy()]), np.concatenate([y.numpy(), yv.numpy()])
    baseline = RidgeCV(alphas=np.logspace(-3, 3, 13)) if regression else LogisticRegression(max_iter=5000)
    return ours, baseline.fit(x, y).score(xt.numpy(), yt.numpy()), metric


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
    with tempfile.TemporaryDirectory() as tmp:
        if tables:
            lines += compare_tables(tables, Path(tmp))
        if "digits_png" in names:
            lines += ["", *digits_png(Path(tmp))] if lines else digits_png(Path(tmp))
    write_page("own_data", "On data no one here wrote", "\n".join(lines))


def compare_tables(names: list[str], tmp: Path) -> list[str]:
    lines = [
        "| table (rows x features) | metric | `data=csv`, MLP (5 seeds) | scikit-learn (same splits) | s per run |"
    ]
    lines.append("|---|---|---|---|---|")
    print(*lines, sep="\n")
    for name in names:
        path = write_csv(name, tmp)
        start = time.perf_counter()
        results = [scores(path, seed, tmp / f"{name}_{seed}") for seed in SEEDS]
        seconds = (time.perf_counter() - start) / len(SEEDS)
        ours, theirs, metric = zip(*results, strict=True)
        data = DATASETS[name]()
        baseline = "RidgeCV" if metric[0] == "test/r2" else "LogisticRegression"
        fmt = lambda v: f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}"  # noqa: E731
        lines.append(
            f"| {name} ({data.data.shape[0]} x {data.data.shape[1]}) | {metric[0]} | {fmt(ours)} "
            f"| {fmt(theirs)} ({baseline}) | {seconds:.0f} |"
        )
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main(sys.argv[1:] or [*DATASETS, "digits_png"])

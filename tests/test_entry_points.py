"""The entry scripts as users run them (the default config, the progress bar on): train, eval and predict on one
table, what the run's log keeps, and the folder a failed run leaves."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, run_script

pytestmark = pytest.mark.slow


def write_csv(path: Path, n: int) -> None:
    """Rows whose label is a rule of two numeric features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "a", "b", "label"])
        writer.writerows([f"row{i}", a, b, "yes" if a + b > 0 else "no"] for i, (a, b) in enumerate(x))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A 2-epoch run on a CSV: the table, the run folder, and what the terminal showed."""
    root = tmp_path_factory.mktemp("table")
    table, run_dir = root / "rows.csv", root / "run"
    write_csv(table, 300)
    data = ["data=csv", f"data.path={table}", "data.target=label", "data.id_column=id"]
    result = run_script("train.py", *data, *FAST, run_dir=run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 1/1" in result.stderr  # the progress bar drew
    return table, run_dir, result.stdout + result.stderr


def test_train_log_ends_as_the_terminal_does(trained) -> None:
    _, run_dir, shown = trained
    log = (run_dir / "train.log").read_text()
    for end in ("test/acc", "Verdict:", f"Report: {run_dir.resolve()}", f"Outputs: {run_dir.resolve()}"):
        assert end in shown and end in log, end
    assert "━━━ 4/4" not in log  # the bar's frames stay out


def test_eval_and_predict_run_on_the_trained_checkpoint(trained, tmp_path: Path) -> None:
    table, run_dir, _ = trained
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    evaluated = run_script("eval.py", f"ckpt_path={ckpt}", run_dir=tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "Testing" in evaluated.stdout + evaluated.stderr  # the progress bar drew
    assert "test/acc" in (tmp_path / "eval" / "eval.log").read_text()
    predicted = run_script("predict.py", f"ckpt_path={ckpt}", f"data.path={table}", run_dir=tmp_path / "predict")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert len((tmp_path / "predict" / "predictions.csv").read_text().splitlines()) == 301


@pytest.mark.parametrize(
    "overrides, error",
    [
        (["scheduler=onecycle", "trainer.max_epochs=-1"], "error: scheduler=onecycle needs a bounded run"),
        (["scheduler.warmup=100000"], "error: scheduler.warmup=100000: longer than the run's 8 steps"),
    ],
)
def test_a_run_failing_before_its_first_step_leaves_no_folder(tmp_path: Path, overrides, error) -> None:
    # found only once the data is known, after the loggers have written their files into the run folder
    run_dir = tmp_path / "run"
    result = run_script("train.py", *FAST, *overrides, run_dir=run_dir)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(error)
    assert "Outputs:" not in result.stdout and not run_dir.exists()


def test_a_failed_resume_keeps_the_folder_it_continues(trained, tmp_path: Path) -> None:
    _, run_dir, _ = trained
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    result = run_script("train.py", "ckpt_path=auto", "scheduler.warmup=100000", run_dir=run_dir)
    assert result.returncode == 2, result.stderr[-3000:]
    assert set(before) <= {p.relative_to(run_dir) for p in run_dir.rglob("*")}

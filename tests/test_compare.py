"""Sweep comparison: seeds collapsed per configuration, significance in words, rebuilt from a folder."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from recipe.sweeps.compare import guess_direction, write_comparison
from recipe.sweeps.runs import Job, read_sweep
from recipe.sweeps.stats import significance

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- significance in words


def test_significance_says_a_clear_difference_is_significant() -> None:
    # by hand: difference -3, standard error sqrt(1/3 + 1/3) = 0.816, t = -3.67 on 4 degrees of freedom,
    # p = 0.021, 95% half-width 2.776 * 0.816 = 2.27
    assert significance("sgd", [1, 2, 3], "adamw", [4, 5, 6]) == (
        "sgd vs adamw: -3 ± 2.3 over 3 vs 3 runs (p=0.021): significant at 5%"
    )


def test_significance_calls_a_difference_within_the_seed_noise_not_significant() -> None:
    sentence = significance("sgd", [0.90, 0.95, 0.92], "adamw", [0.93, 0.91, 0.94])
    assert sentence.startswith("sgd vs adamw: -0.003333 ± ")
    assert sentence.endswith("not significant, within the seed noise")


def test_significance_refuses_to_test_one_seed_or_no_spread() -> None:
    one_seed = significance("sgd", [0.9], "adamw", [0.95, 0.96])
    assert one_seed.endswith("not tested (the t-test needs at least 2 seeds of each)")
    assert "no noise to test against" in significance("sgd", [0.9, 0.9], "adamw", [0.95, 0.95])


def test_direction_is_guessed_from_the_metric_name() -> None:
    guessed = [guess_direction(m) for m in ("val/acc_best", "val/loss", "fit_time_s")]
    assert guessed == ["maximize", "minimize", "minimize"]


# ---------------------------------------------------------------- a sweep folder written by hand


def _job(
    sweep: Path, name: str, overrides: list[str], record: dict | None, val_loss: list[float], test_acc: float
) -> None:
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"optimized_metric": "val/acc_best"}), folder / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": {"sweeper": {}}}), folder / ".hydra" / "hydra.yaml")
    if record is not None:
        (folder / "job.json").write_text(json.dumps(record))
    if val_loss:
        with SummaryWriter(folder / "tensorboard") as writer:
            for epoch, loss in enumerate(val_loss):
                writer.add_scalar("val/loss", loss, (epoch + 1) * 10)
                writer.add_scalar("lr-AdamW/pg1", 0.1 / (epoch + 1), (epoch + 1) * 10)
            writer.add_scalar("test/acc", test_acc, 20)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """adamw over 3 seeds, sgd over 2 seeds plus a failed one, lr=0 failed, a job still running."""

    def done(value: float, duration_s: float = 2.0) -> dict:
        return {"status": "completed", "value": value, "duration_s": duration_s}

    _job(tmp_path, "0_optimizer=adamw", ["optimizer=adamw", "seed=0"], done(0.90), [1.0, 0.5], 0.80)
    _job(tmp_path, "1_optimizer=adamw", ["optimizer=adamw", "seed=1"], done(0.92), [1.2, 0.7], 0.82)
    _job(tmp_path, "2_optimizer=adamw", ["optimizer=adamw", "seed=2"], done(0.94), [1.1, 0.6], 0.84)
    _job(tmp_path, "3_optimizer=sgd", ["optimizer=sgd", "seed=0"], done(0.96, 4.0), [0.9, 0.4], 0.9)
    _job(tmp_path, "4_optimizer=sgd", ["optimizer=sgd", "seed=1"], done(0.98, 6.0), [0.8, 0.3], 0.92)
    failed = {"status": "failed", "value": None, "duration_s": 0.1, "reason": "optimizer.lr=0: must be positive"}
    _job(tmp_path, "5_optimizer=sgd", ["optimizer=sgd", "seed=2"], {**failed, "reason": "CUDA out of memory"}, [], 0)
    _job(tmp_path, "6_optimizer=sgd,optimizer.lr=0", ["optimizer=sgd", "optimizer.lr=0", "seed=0"], failed, [], 0)
    _job(tmp_path, "7_optimizer=adam", ["optimizer=adam", "seed=0"], None, [1.0], 0)  # running: no job.json yet
    return tmp_path


def test_jobs_are_read_back_with_their_status_metrics_and_curves(sweep: Path) -> None:
    jobs = read_sweep(sweep)
    assert [j.folder.name[0] for j in jobs] == list("01234567")
    assert [j.status for j in jobs] == ["completed"] * 5 + ["failed"] * 2 + ["unfinished"]
    assert jobs[0].config == ("optimizer=adamw",)  # the seed is collapsed, and so is the fold:
    assert Job(Path(), ["data.fold=2", "optimizer=sgd", "seed=1"], "completed").config == ("optimizer=sgd",)
    assert jobs[0].metrics["test/acc"] == pytest.approx(0.80)
    assert jobs[0].curves["val/loss"] == [(10, 1.0), (20, 0.5)]
    assert jobs[0].curves["lr"] == [(10, pytest.approx(0.1)), (20, pytest.approx(0.05))]


def test_comparison_collapses_seeds_ranks_best_first_and_lists_failures(sweep: Path) -> None:
    comparison = write_comparison(sweep)
    assert comparison.direction == "maximize"  # guessed from val/acc_best: no sweeper direction
    with open(sweep / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["configuration"] for r in rows] == [
        "optimizer=sgd",
        "optimizer=adamw",
        "optimizer=sgd optimizer.lr=0",
        "optimizer=adam",
    ]
    assert [(r["n"], r["not_completed"]) for r in rows] == [("2", "1"), ("3", "0"), ("0", "1"), ("0", "1")]
    assert float(rows[0]["val/acc_best mean"]) == pytest.approx(0.97)
    assert float(rows[0]["val/acc_best std"]) == pytest.approx(statistics.stdev([0.96, 0.98]))
    assert float(rows[1]["test/acc mean"]) == pytest.approx(0.82)
    assert float(rows[0]["time_s mean"]) == pytest.approx(5.0)
    assert rows[2]["val/acc_best mean"] == ""
    assert rows[0]["command"] == "python src/train.py optimizer=sgd"

    markdown = (sweep / "comparison.md").read_text()
    assert "| optimizer=sgd | 2 | 0.9700 ± 0.0141 | 0.9100 ± 0.0141 | 5.0 |" in markdown
    assert "    python src/train.py optimizer=sgd\n" in markdown
    assert "- optimizer=adamw vs optimizer=sgd: -0.05 ± " in markdown
    assert "- 5_optimizer=sgd (failed): CUDA out of memory" in markdown
    assert "- 6_optimizer=sgd,optimizer.lr=0 (failed): optimizer.lr=0: must be positive" in markdown
    assert "- 7_optimizer=adam (unfinished)" in markdown
    assert (sweep / "comparison.png").stat().st_size > 10_000


def test_comparison_ranks_the_other_way_when_told_to_minimize(sweep: Path) -> None:
    comparison = write_comparison(sweep, "minimize")
    assert comparison.rows[0].label == "optimizer=adamw"
    assert comparison.best_command == "python src/train.py optimizer=adamw"


def test_a_best_run_once_gets_one_warning_instead_of_a_test_per_row(sweep: Path) -> None:
    for name in ("3_optimizer=sgd", "4_optimizer=sgd"):
        (sweep / name / "job.json").unlink()
    (sweep / "0_optimizer=adamw" / "job.json").write_text('{"status": "completed", "value": 0.99}')
    comparison = write_comparison(sweep)  # adamw: 0.99, 0.92, 0.94; sgd: nothing completed
    assert comparison.sentences == []  # one configuration with runs: nothing to compare
    _job(sweep, "8_optimizer=adam", ["optimizer=adam", "seed=9"], {"status": "completed", "value": 1.0}, [], 0)
    comparison = write_comparison(sweep)
    assert comparison.sentences == [
        "optimizer=adam ran once: its lead is not tested against the seed noise (run seeds)"
    ]


def test_jobs_killed_while_hydra_wrote_their_files_are_left_out_not_fatal(sweep: Path) -> None:
    """A worker killed (SIGKILL, the OOM killer) between Hydra's writes of ``.hydra/`` leaves empty or torn files."""
    torn = "hydra:\n  sweeper: {direction: mini"
    for name, hydra, overrides in (("0_killed", "", ""), ("1_killed", torn, "- optimizer=sgd\n- seed=7\n")):
        (sweep / name / ".hydra").mkdir(parents=True)
        (sweep / name / ".hydra" / "config.yaml").write_text("optimized_metric: val/loss\n")
        (sweep / name / ".hydra" / "hydra.yaml").write_bytes(hydra.encode() or b"hydra: \xc3")  # cut in a character
        (sweep / name / ".hydra" / "overrides.yaml").write_text(overrides)
    minimize = OmegaConf.create({"hydra": {"sweeper": {"direction": "minimize"}}})
    OmegaConf.save(minimize, sweep / "0_optimizer=adamw" / ".hydra" / "hydra.yaml")  # the first whole job
    comparison = write_comparison(sweep)
    assert (comparison.metric, comparison.direction) == ("val/acc_best", "minimize")
    jobs = {j.folder.name: j for j in read_sweep(sweep)}
    assert "0_killed" not in jobs and jobs["1_killed"].status == "unfinished"  # its overrides were written whole
    assert comparison.rows[0].label == "optimizer=adamw"


# ---------------------------------------------------------------- a real grid sweep


def _last(folder: Path, tag: str) -> float:
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    return events.Scalars(tag)[-1].value


@pytest.mark.slow
def test_grid_sweep_over_two_seeds_ends_with_a_comparison_matching_its_runs(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "-m",
        f"paths.log_dir={tmp_path}",
        "debug=fast",
        "++trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "optimizer=adamw,sgd",
        "seed=0,1",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    [sweep] = (tmp_path / "train" / "multiruns").iterdir()
    assert f"Comparison: {sweep}/comparison.md" in proc.stdout

    with open(sweep / "comparison.csv") as f:
        rows = {r["configuration"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["optimizer=adamw", "optimizer=sgd"]
    for name, row in rows.items():
        folders = [p for p in sweep.iterdir() if p.is_dir() and name in p.name]
        assert len(folders) == 2 and row["n"] == "2"
        for metric in ("val/acc_best", "test/acc", "test/loss"):
            own = [_last(folder, metric) for folder in folders]  # each run's own last logged value
            assert float(row[f"{metric} mean"]) == pytest.approx(statistics.fmean(own), abs=1e-6)
            assert float(row[f"{metric} std"]) == pytest.approx(statistics.stdev(own), abs=1e-6)
        returned = [json.loads((folder / "job.json").read_text())["value"] for folder in folders]
        assert returned == pytest.approx([_last(folder, "val/acc_best") for folder in folders], abs=1e-6)
    markdown = (sweep / "comparison.md").read_text()
    assert "4 jobs: 4 completed." in markdown
    assert " vs optimizer=" in markdown and "over 2 vs 2 runs" in markdown
    assert (sweep / "comparison.png").stat().st_size > 10_000

    # rebuilt by hand from the folder, one job as if it had not finished
    for name in ("comparison.md", "comparison.csv", "comparison.png"):
        (sweep / name).unlink()
    unfinished = sorted(p for p in sweep.iterdir() if p.is_dir())[0]
    (unfinished / "job.json").unlink()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "recipe.sweeps.compare", str(sweep)], cwd=ROOT, capture_output=True, text=True
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith(f"Comparison: {sweep}/comparison.md")
    with open(sweep / "comparison.csv") as f:
        assert sorted(r["n"] for r in csv.DictReader(f)) == ["1", "2"]
    assert f"- {unfinished.name} (unfinished)" in (sweep / "comparison.md").read_text()

"""Studies (``hydra/sweeper=study``): arms from the scientific keys, one search per arm over the nuisance keys, the
best of each over seeds, the isolation table, the axis plots' edge flags, and bad studies refused in one line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution

from recipe.errors import ConfigError
from recipe.sweeps.study import Arm, arms, check_study
from recipe.sweeps.study_report import ArmResult, edge_flags

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"optimizer": ["adamw", "lion", "sgd"]}
LR = {"optimizer=adamw": "tag(log, interval(1e-4, 1e-2))", "optimizer=sgd": "tag(log, interval(1e-2, 1.0))"}
TINY = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "test=false",
    "++trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]


def options(group: str) -> list[str]:
    return OPTIONS.get(group, [])


def test_each_combination_of_the_scientific_values_is_an_arm():
    found = arms({"optimizer": ["adamw", "sgd"], "model.dropout": [0.0, 0.2]})
    assert [a.label for a in found] == [
        "optimizer=adamw model.dropout=0.0",
        "optimizer=adamw model.dropout=0.2",
        "optimizer=sgd model.dropout=0.0",
        "optimizer=sgd model.dropout=0.2",
    ]
    assert found[1].folder == "optimizer_adamw_model.dropout_0.2"
    assert arms({"model.hidden_sizes": [[64, 64]], "model.norm": [None]})[0].overrides == (
        "model.hidden_sizes=[64,64]",
        "model.norm=null",
    )


@pytest.mark.parametrize(
    "scientific, nuisance, message",
    [
        (
            {"optimizer": ["adamw", "sgd"]},
            {"optimizer": "choice(adamw, sgd)"},
            "hydra.sweeper.nuisance.optimizer='choice(adamw, sgd)': optimizer is scientific: it cannot also be "
            "nuisance",
        ),
        (
            {"optimizer": ["adamw", "adamx"]},
            {"optimizer.lr": LR},
            "hydra.sweeper.scientific.optimizer='adamx': no such option; choose from: adamw, lion, sgd",
        ),
        (
            {"optimizer": ["adamw", "sgd"]},
            {"optimizer.lr": {**LR, "optimizer=adamx": "interval(0.1, 1.0)"}},
            "hydra.sweeper.nuisance.optimizer.lr='optimizer=adamx': not an arm; the arms: optimizer=adamw, "
            "optimizer=sgd",
        ),
        (
            {"optimizer": ["adamw", "sgd"]},
            {"optimizer.lr": {**LR, "optimizer=sgd": "tag(log, interval(1.0, 1e-2))"}},
            "hydra.sweeper.nuisance.optimizer.lr='tag(log, interval(1.0, 1e-2))': an empty range: interval(low, high) "
            "needs low < high",
        ),
        (
            {"optimizer": ["adamw"]},
            {"optimizer.weight_decay": "tag(log, interval(0.0, 0.1))"},
            "hydra.sweeper.nuisance.optimizer.weight_decay='tag(log, interval(0.0, 0.1))': a log range needs low > 0",
        ),
        ({"optimizer": ["adamw"]}, {"model.width": "range(4, 4)"}, "model.width='range(4, 4)': an empty range"),
        ({"optimizer": ["adamw"]}, {"model.width": "choice()"}, "model.width='choice()': not a range of the search"),
        ({"optimizer": []}, {}, r"hydra.sweeper.scientific.optimizer=\[\]: a list of the values to compare"),
    ],
)
def test_a_bad_study_is_one_config_error(scientific, nuisance, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[]", r"\[\]")):
        check_study(scientific, nuisance, options)


def study_with(lrs_and_values: list[tuple[float, float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    dist = FloatDistribution(1e-5, 1e-3, log=True)
    for lr, value in lrs_and_values:
        study.add_trial(
            optuna.trial.create_trial(params={"optimizer.lr": lr}, distributions={"optimizer.lr": dist}, value=value)
        )
    return study


def test_an_arm_whose_three_best_trials_sit_at_the_edge_of_a_log_range_is_flagged(tmp_path):
    # 1e-5 to 1e-3 on a log scale: the outer 10% is below 1.58e-5 (and above 6.3e-4); in linear terms 1.2e-5 and
    # 1.5e-5 would sit in the lowest 0.05%, so the test also tells the log scale from the linear one
    at_edge = study_with([(1.1e-5, 0.9), (1.2e-5, 0.95), (1.5e-5, 0.93), (3e-4, 0.5), (9e-4, 0.4)])
    result = ArmResult(Arm(("optimizer=lion",)), at_edge, [])
    assert edge_flags(result, maximize=True) == [
        "optimizer=lion: best optimizer.lr at the low edge of [1e-5, 1e-3]: widen the range"
    ]
    assert edge_flags(result, maximize=False) == []  # the three worst are not all at an edge
    inside = study_with([(1.1e-5, 0.9), (1.2e-5, 0.95), (2e-5, 0.93)])  # 2e-5 sits at 15% of the log range
    assert edge_flags(ArmResult(Arm(("optimizer=lion",)), inside, []), maximize=True) == []


@pytest.fixture(scope="module")
def study_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``-m hparams_search=compare_optimizers`` as a user runs it, cut to two arms, three trials each, two seeds;
    AdamW's trials are enqueued at the top of its LR range, so its edge flag must show."""
    log_dir = tmp_path_factory.mktemp("study")
    enqueue = "hydra.sweeper.enqueue_trials=[{optimizer.lr:0.03},{optimizer.lr:0.029},{optimizer.lr:0.028}]"
    cmd = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "-m",
        "hparams_search=compare_optimizers",
        "hydra.sweeper.scientific.optimizer=[adamw,sgd]",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.seeds=2",
        "hydra.sweeper.sampler.n_startup_trials=3",
        enqueue,
        f"paths.log_dir={log_dir}",
        f"hydra.sweep.dir={log_dir}/sweep",
        *TINY,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return log_dir / "sweep", proc


def test_a_study_writes_the_isolation_table_plots_and_curves(study_run):
    folder, proc = study_run
    assert all((folder / name).is_file() for name in ("study.md", "isolation.png", "axes.png", "curves.png"))
    with open(folder / "study.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["arm"] for r in rows] == ["optimizer=adamw", "optimizer=sgd"]
    for row, arm in zip(rows, ("optimizer_adamw", "optimizer_sgd"), strict=True):
        assert len(list((folder / arm).glob("trial_*/.hydra"))) == 3  # each arm its own search of 3 trials
        values = [float(v) for v in row["values"].split()]
        seeds = [folder / f"{arm}_seed{s}" / "job.json" for s in (0, 1)]
        assert len(values) == 2 and all(p.is_file() for p in seeds)  # its best configuration over 2 seeds
        assert row["best config over seeds"].startswith(f"{sum(values) / 2:.4f} ± ")
    assert sum(r["vs the best arm (Welch)"] == "best" for r in rows) == 1
    other = next(r for r in rows if r["vs the best arm (Welch)"] != "best")
    assert "over 2 vs 2 runs" in other["vs the best arm (Welch)"]
    printed = proc.stdout + proc.stderr
    assert "| optimizer=adamw |" in printed and f"Study report: {folder / 'study.md'}" in printed


def test_a_range_too_narrow_for_the_best_trials_prints_the_edge_flag(study_run):
    _, proc = study_run
    printed = proc.stdout + proc.stderr
    assert "optimizer=adamw: best optimizer.lr at the high edge of [1e-4, 0.03]: widen the range" in printed
    assert "optimizer=sgd: best optimizer.lr" not in printed  # 0.03 is inside SGD's range


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer=choice(adamw,sgd)", "error: hydra.sweeper.nuisance.optimizer='choice(adamw,sgd)': optimizer is"),
        ("hydra.sweeper.scientific.optimizer=[adamw,adamx]", "error: hydra.sweeper.scientific.optimizer='adamx'"),
        ("seed=null", "error: seed=None: an integer: hydra.sweeper.seeds counts up from it"),
        (
            "optimizer.weight_decay=interval(0.1,0.01)",
            "error: hydra.sweeper.nuisance.optimizer.weight_decay='interval(0.1,0.01)': an empty range",
        ),
    ],
)
def test_a_bad_study_on_the_command_line_is_one_line_and_exit_2(tmp_path, override, message):
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), "-m", "hparams_search=compare_optimizers", override]
    proc = subprocess.run([*cmd, f"paths.log_dir={tmp_path}"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(message) and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing ran, no folder


def test_an_arm_none_of_whose_trials_completes_is_reported_and_the_others_still_run(tmp_path):
    """A schedule-free optimizer refuses the study's warmup + cosine in every trial: its row says why, and the
    other arm still gets its seeds and the report."""
    cmd = [
        sys.executable, str(ROOT / "src" / "train.py"), "-m", "hparams_search=compare_optimizers",
        "hydra.sweeper.scientific.optimizer=[adamw,schedulefree_adamw]", "optimizer.lr=tag(log,interval(1e-3,1e-2))",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.seeds=1", "hydra.sweeper.sampler.n_startup_trials=2",
        f"paths.log_dir={tmp_path}", f"hydra.sweep.dir={tmp_path}/sweep", *TINY,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "sweep" / "study.csv") as f:
        rows = {r["arm"]: r for r in csv.DictReader(f)}
    failed = rows["optimizer=schedulefree_adamw"]
    assert failed["best trial (search)"].startswith("none: trial 1: scheduler='warmup_cosine': a schedule-free")
    assert failed["values"] == "" and failed["n"] == "0"
    assert rows["optimizer=adamw"]["vs the best arm (Welch)"] == "best" and rows["optimizer=adamw"]["values"]
    assert (tmp_path / "sweep" / "optimizer_adamw_seed0" / "job.json").is_file()
    assert (tmp_path / "sweep" / "isolation.png").is_file()

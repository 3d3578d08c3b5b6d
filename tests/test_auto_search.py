"""-m hparams_search=auto: the space chosen from the config, its scoring, its refusals, and whole searches as users
run them (a table, an image folder, a net of their own)."""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import ROOT, run_script
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from test_image_folder import make_folder

from recipe.data import DigitsDataModule
from recipe.errors import ConfigError
from recipe.sweeps.auto import (
    as_given,
    batch_sizes,
    check_auto,
    choose_scoring,
    chosen_space,
    epochs_to_best,
    flat_params,
    trial_metric,
)

AUTO = ["hydra.mode=MULTIRUN", "hparams_search=auto", "~logger", "~callbacks.lr_monitor", "trainer.max_epochs=4"]
TINY_SEARCH = ["hydra.sweeper.n_trials=2", "hydra.sweeper.auto.folds=2", "hydra.sweeper.sampler.n_startup_trials=1"]
TINY_SEARCH += ["hydra/sweeper/pruner=none"]  # every trial runs its folds


# ---------------------------------------------------------------- the space, from the config alone


def test_lr_range_follows_the_optimizer_family(make_cfg) -> None:
    assert chosen_space(make_cfg("optimizer=adamw"))["optimizer.lr"] == "tag(log, interval(0.0001, 0.01))"
    assert chosen_space(make_cfg("optimizer=sgd"))["optimizer.lr"] == "tag(log, interval(0.01, 0.5))"
    assert chosen_space(make_cfg("optimizer=sam", "optimizer.base=sgd"))["optimizer.lr"].endswith("(0.01, 0.5))")
    # decoupled decay (AdamW) is searched in a range 30x above an L2 term's (SGD)
    assert chosen_space(make_cfg("optimizer=adamw"))["optimizer.weight_decay"].endswith("(0.0001, 0.3))")
    assert chosen_space(make_cfg("optimizer=sgd"))["optimizer.weight_decay"].endswith("(1e-06, 0.01))")


def test_model_keys_follow_the_model(make_cfg) -> None:
    mlp = chosen_space(make_cfg("model=mlp"))
    assert "[64]" in mlp["model.hidden_sizes"] and "[512,512,512]" in mlp["model.hidden_sizes"]
    cnn = chosen_space(make_cfg("model=cnn"))  # three stages configured: three stages searched
    assert cnn["model.channels"] == "choice([16,32,64], [32,64,128], [64,128,256])"
    assert {"model.blocks_per_stage", "model.dropout"} <= set(cnn)
    tabm = chosen_space(make_cfg("model=tabm"))  # data=csv's default: its members' width and depth
    assert tabm["model.d_block"] == "choice(64, 128, 256, 512)" and {"model.n_blocks", "model.dropout"} <= set(tabm)
    own = chosen_space(make_cfg("model=my_net"))
    assert not [key for key in own if key.startswith("model.")]  # nothing of a net of your own
    assert {"optimizer.lr", "data.batch_size", "trainer.max_epochs"} <= set(own)


def test_batch_sizes_leave_steps_on_small_data() -> None:
    assert batch_sizes(100) == [16]
    assert batch_sizes(1000) == [16, 32, 64, 128]
    assert batch_sizes(10**6)[-1] == 512


def test_scoring_uses_folds_below_the_threshold() -> None:
    assert choose_scoring(455, 5000, 5, has_folds=True, seeded_splits=True).folds == 5
    assert choose_scoring(455, 5000, 5, has_folds=False, seeded_splits=True).seeds == 3
    assert choose_scoring(455, 5000, 5, has_folds=False, seeded_splits=False).seeds == 1
    large = choose_scoring(50_000, 5000, 5, has_folds=True, seeded_splits=True)
    assert (large.folds, large.seeds) == (None, 1)


def test_the_first_trial_is_the_configuration_as_given(make_cfg) -> None:
    cfg = make_cfg("optimizer.lr=0.003", "data.batch_size=64")
    space = {
        "optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
        "data.batch_size": CategoricalDistribution([16, 32, 64]),
        "model.hidden_sizes": CategoricalDistribution(["[64]", "[256,256]"]),
        "trainer.max_epochs": IntDistribution(100, 200),  # the config's 30 is outside: drawn instead
    }
    assert as_given(cfg, space) == {"optimizer.lr": 0.003, "data.batch_size": 64, "model.hidden_sizes": "[256,256]"}


def test_the_final_model_trains_the_epochs_to_its_trials_best() -> None:
    # not the epochs early stopping waited past the best: the first epoch at the best, plus one
    assert epochs_to_best({0: 0.9, 1: 0.5, 2: 0.5, 3: 0.6}, "minimize") == 2
    assert epochs_to_best({0: 0.5, 1: 0.8, 2: 0.9, 3: 0.9}, "maximize") == 3
    assert epochs_to_best({}, "minimize") is None


def test_trials_are_scored_by_the_val_loss_unless_another_metric_is_named() -> None:
    assert trial_metric("classification", "val/acc_best") == "val/loss_best"
    assert trial_metric("regression", "val/loss_best") == "val/loss_best"
    assert trial_metric("classification", "val/auroc") == "val/auroc"  # the user's own choice stays


def test_nested_params_from_the_command_line_are_flattened() -> None:
    params = {"model": {"hidden": "int(interval(8, 64))"}, "optimizer.lr": {"optimizer=sgd": "interval(0.1, 1)"}}
    assert flat_params(params) == {"model.hidden": "int(interval(8, 64))", "optimizer.lr": params["optimizer.lr"]}


def test_refusals_decidable_from_the_config(make_cfg) -> None:
    with pytest.raises(ConfigError, match=r"^model='my_project.nets.MyNet': a net of your own: .*model.hidden="):
        check_auto(make_cfg("model=my_net"), {}, [])
    check_auto(make_cfg("model=my_net"), {"model.hidden": "int(interval(8, 64))"}, [])
    check_auto(make_cfg("model=my_net"), {}, [], ["-m", "model.hidden=int(interval(8,64))"])  # a sweep names it too
    with pytest.raises(ConfigError, match=r"^model.width='int\(interval\(8,64\)\)': not a key .*hidden_sizes"):
        check_auto(make_cfg(), {}, [], ["model.width=int(interval(8,64))"])
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.exclude='data.foo': not among the keys"):
        check_auto(make_cfg(), {}, ["data.foo"])


def test_train_on_val_trains_on_both_splits_and_keeps_validation() -> None:
    plain, pooled = DigitsDataModule(seed=1), DigitsDataModule(seed=1, train_on_val=True)
    plain.setup(), pooled.setup()
    sizes = {s: len(plain.datasets[s]) for s in ("train", "val", "test")}
    assert len(pooled.datasets["train"]) == sizes["train"] + sizes["val"]
    assert len(pooled.datasets["val"]) == sizes["val"] and len(pooled.datasets["test"]) == sizes["test"]


# ---------------------------------------------------------------- whole searches, as users run them


def _search(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return run_script("train.py", *AUTO, f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides, run_dir=tmp_path / "run")


def _final(result: subprocess.CompletedProcess[str]) -> tuple[dict[str, float], list[str]]:
    """The final model's test metrics and the command that trains it again: the output's last two lines."""
    lines = [line.split("] ", 1)[-1] for line in result.stdout.strip().splitlines()]
    assert lines[-2] == "Train it again with:", lines[-5:]
    scores = re.findall(r"(test/\w+)=([\d.]+)", lines[-3])
    return {name: float(value) for name, value in scores}, shlex.split(lines[-1])


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A table no benchmark has seen: 160 rows, two informative columns, a string column and a label."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("table") / "rows.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "colour", "label"])
        for _ in range(160):
            a, b = rng.normal(size=2)
            writer.writerow([round(a, 3), round(b, 3), rng.choice(["red", "blue"]), "yes" if a + b > 0 else "no"])
    return path


def test_auto_on_a_csv_searches_scores_by_folds_and_retrains_the_best(table: Path, tmp_path: Path) -> None:
    result = _search(tmp_path, "data=csv", f"data.path={table}", "data.target=label", *TINY_SEARCH)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    written = (sweep / "search_space.yaml").read_text()
    assert "optimizer.lr: tag(log, interval(0.0001, 0.01))" in written
    rows = int(re.search(r"\((\d+) rows", written).group(1))  # train and validation: 4 steps an epoch at least
    assert (
        4 * max(int(b) for b in re.search(r"data.batch_size: choice\(([^)]*)\)", written).group(1).split(",")) <= rows
    )
    assert "The search space (in " in result.stdout and "scored by mean over 2 folds" in result.stdout
    assert "metric: val/loss_best" in written and "direction: minimize" in written
    assert sorted(p.name for p in sweep.glob("trial_*")) == [f"trial_{t}_fold{f}" for t in (0, 1) for f in (0, 1)]
    scores, command = _final(result)
    assert set(scores) == {"test/acc", "test/loss"} and scores["test/acc"] > 0.5
    assert "++data.train_on_val=true" in command and "++data.folds=2" not in command
    assert not [o for o in command if o.startswith("optimized_metric=")]
    # the final model trains for the epochs its trial's first fold took to its lowest val loss
    best = optuna.load_study(study_name="auto", storage=f"sqlite:///{sweep / 'optuna.db'}").best_trial
    assert f"trainer.max_epochs={epochs_to_best(best.intermediate_values, 'minimize')}" in command
    # the printed command trains the same model again
    again = run_script("train.py", *command[2:], run_dir=tmp_path / "again")
    assert again.returncode == 0, again.stderr[-3000:]
    printed = re.search(r"test/acc\s*│\s*([\d.]+)", again.stdout + again.stderr)
    assert round(float(printed.group(1)), 4) == scores["test/acc"]


def test_auto_on_an_image_folder_searches_a_cnn(tmp_path: Path) -> None:
    make_folder(tmp_path / "images", per_class=20)
    data = ["data=image_folder", f"data.path={tmp_path / 'images'}", "data.image_size=8", "data.mode=grayscale"]
    result = _search(tmp_path, *data, "model=cnn", "model.channels=[4,8]", *TINY_SEARCH)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model.channels: choice([16,32], [32,64], [64,128])" in result.stdout
    scores, command = _final(result)
    assert "test/acc" in scores and "data=image_folder" in command


def test_auto_with_your_own_net_needs_its_keys(tmp_path: Path) -> None:
    refused = _search(tmp_path, "model=my_net")
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "error: model='my_project.nets.MyNet': a net of your own: hparams_search=auto searches its keys (['hidden'])"
        " only when named, e.g. model.hidden='int(interval(16, 256))'"
    ]
    assert not (tmp_path / "sweep").exists()


def test_auto_with_your_own_net_stops_at_the_time_budget(tmp_path: Path) -> None:
    """A 1-second budget: the first trial completes, no other starts, and the search still reports."""
    result = _search(
        tmp_path, "model=my_net", "model.hidden=int(interval(8,32))", "hydra.sweeper.n_trials=5",
        "hydra.sweeper.auto.folds=2", "hydra.sweeper.timeout=0.016", "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "hydra.sweeper.timeout=0.016 minutes reached: no more trials" in result.stdout
    assert [p.name for p in (tmp_path / "sweep").glob("trial_*_fold0")] == ["trial_0_fold0"]
    scores, command = _final(result)
    assert "test/acc" in scores and any(o.startswith("model.hidden=") for o in command)


@pytest.mark.parametrize(
    "override, line",
    [
        ("hydra.sweeper.timeout=0", "error: hydra.sweeper.timeout=0: a positive number of minutes, or null"),
        (
            "+hydra.sweeper.params.model.width='int(interval(8, 64))'",
            "error: model.width='int(interval(8, 64))': not a key of the config to search; model has: "
            "['activation', 'dropout', 'hidden_sizes', 'init', 'norm']",
        ),
    ],
)
def test_bad_search_settings_are_one_line_before_any_trial(tmp_path: Path, override: str, line: str) -> None:
    cmd = [sys.executable, str(ROOT / "src" / "train.py"), *AUTO, f"hydra.sweep.dir={tmp_path}/sweep", override]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert (result.returncode, result.stderr.strip()) == (2, line)
    assert not (tmp_path / "sweep").exists()

"""The Ray Tune sweeper (hydra/sweeper=ray_tune): searches as users run them, PBT's exploit, bad input in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
from conftest import NO_LOGGER, ROOT
from omegaconf import DictConfig

pytest.importorskip("ray")

from recipe.errors import ConfigError
from recipe.sweeps.ray.trial import TuneTrial, tune_trial
from recipe.sweeps.space import SearchSpace

pytestmark = pytest.mark.slow
SEARCH = [
    "hparams_search=digits_ray",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.num_sanity_val_steps=0",
    "hydra.sweeper.num_cpus=2",
]
ASHA = [
    "hydra.sweeper.scheduler=asha",
    "hydra.sweeper.asha.grace_period=1",
    "hydra.sweeper.asha.reduction_factor=2",
    "hydra.sweeper.n_trials=3",
    "hydra.sweeper.resources_per_trial.cpu=0.5",
    "trainer.max_epochs=2",
]
PBT = [
    "hydra.sweeper.scheduler=pbt",
    "hydra.sweeper.search_alg=random",
    "hydra.sweeper.pbt.perturbation_interval=1",
    "hydra.sweeper.pbt.quantile_fraction=0.5",
    "+hydra.sweeper.pbt.synch=true",  # members wait for each other at each interval: the worse one exploits
    "hydra.sweeper.n_trials=2",
    "hydra.sweeper.resources_per_trial.cpu=0.5",
    "trainer.max_epochs=3",
]
REPORT_CALLBACK = "++callbacks.tune_report._target_=recipe.sweeps.ray.callback.TuneReport"


def ray_processes() -> list[str]:
    """Command lines of Ray's own processes on this machine (GCS, raylet, its workers)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(name in line for name in ("gcs_server", "raylet", "default_worker.py")):
            found.append(line)
    return found


def ray_temp_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("ray-*")) | set(Path(tempfile.gettempdir()).glob("ray/session_*"))


def sweep(sweep_dir: Path, *overrides: str) -> tuple[int, str]:
    """``python src/train.py -m hparams_search=digits_ray ...`` as a user runs it; its exit code and output (up to
    600 s: on a loaded 2-core machine one took over 300 s)."""
    cmd = [sys.executable, "src/train.py", "-m", *SEARCH, *overrides, f"hydra.sweep.dir={sweep_dir}"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    return result.returncode, result.stdout + result.stderr


def trials(sweep_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(sweep_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def asha_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, set[Path]]:
    before = ray_temp_folders()
    sweep_dir = tmp_path_factory.mktemp("asha") / "sweep"
    rc, out = sweep(sweep_dir, *ASHA)
    return sweep_dir, rc, out, ray_temp_folders() - before


def test_an_asha_search_runs_each_trial_as_a_training_run_in_its_sweep_folder_and_writes_the_report(
    asha_search: tuple[Path, int, str, set[Path]],
) -> None:
    sweep_dir, rc, out, _ = asha_search
    assert rc == 0, out[-3000:]
    rows = trials(sweep_dir)
    assert [row["number"] for row in rows] == ["0", "1", "2"]
    assert {row["state"] for row in rows} <= {"COMPLETE", "PRUNED"} and "COMPLETE" in {r["state"] for r in rows}
    for row in rows:
        folder = Path(row["output_dir"])
        assert folder == sweep_dir / f"trial_{row['number']}"
        assert (folder / ".hydra" / "overrides.yaml").is_file() and (folder / "train.log").is_file()
        assert list((folder / "tensorboard").rglob("events.out.tfevents.*"))
        lr = float(row["optimizer.lr"])
        assert f"optimizer.lr={lr!r}"[:20] in (folder / ".hydra" / "overrides.yaml").read_text().replace("- ", "")
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    for row in complete:  # the value is what the trial's run returned (its job record), all epochs trained
        job = json.loads((Path(row["output_dir"]) / "job.json").read_text())
        assert job["status"] == "completed" and float(row["val/acc_best"]) == pytest.approx(job["value"])
        assert row["epochs"] == "2" and list((Path(row["output_dir"]) / "checkpoints").glob("*.ckpt"))
    if len(complete) < len(rows):  # ASHA stopped the weak ones at a rung: fewer epochs
        assert min(int(r["epochs"]) for r in rows if r["state"] == "PRUNED") < 2
    best = max(complete, key=lambda r: float(r["val/acc_best"]))
    assert "python src/train.py hparams_search=digits_ray" in out and f"(trial {best['number']})" in out
    for name in ("trials.md", "optimization_history.png", "comparison.md", "multirun.yaml"):
        assert (sweep_dir / name).is_file(), name


def test_a_search_leaves_no_ray_process_and_no_session_files(asha_search: tuple[Path, int, str, set[Path]]) -> None:
    _, rc, out, new_folders = asha_search
    assert rc == 0, out[-2000:]
    assert "Started a local Ray instance" in out
    assert new_folders == set()
    assert ray_processes() == []


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("hydra.sweeper.scheduler=hyperband", "hydra.sweeper.scheduler='hyperband'"),
        ("hydra.sweeper.address=127.0.0.1:9", "hydra.sweeper.address='127.0.0.1:9'"),
    ],
)
def test_bad_sweeper_settings_are_one_line_and_exit_2_before_any_trial(tmp_path: Path, override: str, key: str) -> None:
    sweep_dir = tmp_path / "sweep"
    rc, out = sweep(sweep_dir, override)
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert rc == 2 and len(errors) == 1 and errors[0].startswith(f"error: {key}:"), out[-2000:]
    assert "Traceback" not in out and not sweep_dir.exists()


def settings(**changed: object) -> dict[str, object]:
    base = {
        "direction": "maximize",
        "n_trials": 4,
        "search_alg": "optuna",
        "scheduler": "fifo",
        "resources_per_trial": {"cpu": 1, "gpu": 0},
        "max_concurrent_trials": None,
        "max_failures": 0,
        "address": None,
    }
    return {**base, **changed}


@pytest.mark.parametrize(
    ("changed", "key"),
    [
        ({"search_alg": "bohb"}, "hydra.sweeper.search_alg"),
        ({"max_concurrent_trials": 0}, "hydra.sweeper.max_concurrent_trials"),
        ({"resources_per_trial": {"cpu": 1, "gpu": -1}}, "hydra.sweeper.resources_per_trial.gpu"),
        ({"scheduler": "pbt", "search_alg": "grid"}, "hydra.sweeper.search_alg"),
    ],
)
def test_each_bad_setting_names_its_key(changed: dict, key: str) -> None:
    from hydra_plugins.recipe_ray_tune_sweeper.sweeper import check_settings

    with pytest.raises(ConfigError, match=f"^{key}="):
        check_settings(**settings(**changed))


def test_pbt_needs_a_float_range_to_mutate_and_mutates_only_those() -> None:
    from recipe.sweeps.ray.schedulers import mutations

    space = SearchSpace.parse({"model.hidden_sizes": "choice([64], [128])", "data.batch_size": "choice(32, 64)"})
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.scheduler='pbt': a search with a float interval"):
        mutations(space, "pbt", None)
    space = SearchSpace.parse({"optimizer.lr": "tag(log, interval(0.01, 0.5))", "model.hidden_sizes": "choice(1, 2)"})
    assert list(mutations(space, "pbt", None)) == ["optimizer.lr"]
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.pb2.mutations=\['model.hidden_sizes'\]"):
        mutations(space, "pb2", ["model.hidden_sizes"])


def test_a_perturbed_value_stays_within_its_range() -> None:
    from recipe.sweeps.ray.schedulers import build_scheduler

    space = SearchSpace.parse({"optimizer.momentum": "interval(0.8, 0.99)", "optimizer.lr": "interval(0.01, 0.5)"})
    clip = build_scheduler("pbt", {"perturbation_interval": 1}, space)._custom_explore_fn
    assert clip({"optimizer.momentum": 0.99 * 1.2, "optimizer.lr": 0.01 * 0.8}) == {
        "optimizer.momentum": 0.99,
        "optimizer.lr": 0.01,
    }
    pb2 = build_scheduler("pb2", {"perturbation_interval": 1, "mutations": ["optimizer.lr"]}, space)
    assert pb2._hyperparam_bounds == {"optimizer.lr": [0.01, 0.5]}  # PB2 chooses within the range itself


def test_a_trial_asking_for_more_than_the_cluster_has_is_refused() -> None:
    from recipe.sweeps.ray.cluster import check_resources

    check_resources({"CPU": 2.0, "GPU": 1.0}, 2, 0.5)
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.resources_per_trial.cpu=4: at most 2, the cluster's"):
        check_resources({"CPU": 2.0}, 4, 0)
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.resources_per_trial.gpu=1: at most 0, the cluster's"):
        check_resources({"CPU": 2.0}, 1, 1)


def test_an_address_that_does_not_answer_is_refused_within_seconds() -> None:
    import time

    from recipe.sweeps.ray.cluster import ANSWER_S, check_address

    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.address='127.0.0.1:9': a Ray cluster that answers"):
        check_address("127.0.0.1:9")
    assert time.monotonic() - started <= ANSWER_S + 1


class RecordGroups(L.Callback):
    """The param groups and schedule position at the first optimizer step a run takes in epoch ``epoch`` or later."""

    def __init__(self, epoch: int = 0) -> None:
        self.seen: dict | None = None
        self.epoch = epoch

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        if self.seen is None and trainer.current_epoch >= self.epoch:
            scheduler = trainer.lr_scheduler_configs[0].scheduler
            factors = [f(scheduler.last_epoch) for f in scheduler.lr_lambdas]
            groups = [{k: g[k] for k in ("lr", "momentum", "weight_decay")} for g in optimizer.param_groups]
            self.seen = {"step": trainer.global_step, "groups": groups, "factors": factors}


def test_an_exploited_member_trains_from_the_donor_state_with_its_new_values_from_the_next_step(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray import tune

    from recipe.sweeps.ray.trainable import restored
    from train import train

    kept: list[Path] = []

    def report(metrics: dict, checkpoint: tune.Checkpoint) -> None:  # Tune keeps each reported checkpoint
        kept.append(Path(shutil.copytree(checkpoint.path, tmp_path / f"tune_{len(kept)}")))

    monkeypatch.setattr(tune, "report", report)
    common = [*NO_LOGGER, "optimizer=sgd", REPORT_CALLBACK, "trainer.max_epochs=2", "scheduler=warmup_cosine"]
    mutated = ["optimizer.lr", "optimizer.momentum", "optimizer.weight_decay"]
    donor = make_cfg(*common, f"paths.output_dir={tmp_path / 'donor'}", "optimizer.lr=0.1", "optimizer.momentum=0.9")
    with tune_trial(TuneTrial("val/acc_best", mutated)):
        train(donor)
    assert len(kept) == 2  # one report per validation epoch
    new = {"optimizer.lr": 0.03, "optimizer.momentum": 0.7, "optimizer.weight_decay": 0.002}
    probe = RecordGroups()
    with restored(tune.Checkpoint.from_directory(kept[0]), new) as restore, tune_trial(TuneTrial("val/acc", mutated)):
        member = make_cfg(
            *common,
            f"paths.output_dir={tmp_path / 'member'}",
            *(f"{k}={v}" for k, v in new.items()),
            *restore,
            "trainer.max_epochs=2",
        )
        train(member, extra_callbacks=[probe])
    assert probe.seen is not None and probe.seen["step"] == 4  # went on from the donor's epoch 0 (4 batches)
    decays = sorted({g["weight_decay"] for g in probe.seen["groups"]})
    assert decays == [0.0, 0.002]  # the no-decay group (biases, norms) keeps none
    for group, factor in zip(probe.seen["groups"], probe.seen["factors"], strict=True):
        assert group["momentum"] == 0.7
        assert group["lr"] == pytest.approx(0.03 * factor)  # the new LR at the schedule's current point
    assert 0 < probe.seen["factors"][0] < 1


@pytest.fixture(scope="module")
def pbt_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    sweep_dir = tmp_path_factory.mktemp("pbt") / "sweep"
    rc, out = sweep(sweep_dir, *PBT)
    return sweep_dir, rc, out


def test_a_pbt_search_copies_the_best_members_into_the_worst_and_every_member_finishes(
    pbt_search: tuple[Path, int, str],
) -> None:
    sweep_dir, rc, out = pbt_search
    assert rc == 0, out[-3000:]
    rows = trials(sweep_dir)
    assert len(rows) == 2 and {r["state"] for r in rows} == {"COMPLETE"}
    exploits = (sweep_dir / "tune" / "pbt_global.txt").read_text().splitlines()
    assert exploits, "no exploit in two members over three epochs"
    resumed = [r for r in rows if "Resuming the run in" in (Path(r["output_dir"]) / "train.log").read_text()]
    assert resumed
    history = (sweep_dir / "pbt_history.md").read_text()
    assert "recipe.sweeps.ray.replay.PiecewiseValues" in history and "python src/train.py" in out


def test_a_replayed_history_switches_the_values_at_their_epochs(
    make_cfg: Callable[..., DictConfig], tmp_path: Path
) -> None:
    from train import train

    probe = RecordGroups(epoch=1)
    schedule = "{0:{optimizer.lr:0.1,optimizer.momentum:0.9},1:{optimizer.lr:0.03,optimizer.momentum:0.7}}"
    cfg = make_cfg(
        *NO_LOGGER,
        "optimizer=sgd",
        "optimizer.lr=0.1",
        "optimizer.momentum=0.9",
        "+callbacks.pbt_replay._target_=recipe.sweeps.ray.replay.PiecewiseValues",
        f"+callbacks.pbt_replay.schedule={schedule}",
    )
    train(cfg, extra_callbacks=[probe])
    assert probe.seen is not None and probe.seen["step"] == 4
    for group, factor in zip(probe.seen["groups"], probe.seen["factors"], strict=True):
        assert group["momentum"] == 0.7 and group["lr"] == pytest.approx(0.03 * factor)


def test_ray_is_named_in_one_line_when_the_extra_is_missing(tmp_path: Path) -> None:
    from recipe.extras import check_extras

    (tmp_path / "ray").mkdir()  # an empty folder named ray on the path is not the package
    cfg = {"hydra": {"sweeper": {"_target_": "hydra_plugins.recipe_ray_tune_sweeper.sweeper.RayTuneSweeper"}}}
    import importlib.util

    real = importlib.util.find_spec
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
        with pytest.raises(ConfigError, match=r"^hydra/sweeper='ray_tune': needs the 'ray' extra \(ray\): pip"):
            check_extras(cfg)
    assert ROOT.is_dir()


def test_a_search_killed_with_sigkill_resumes_to_exactly_n_trials_without_running_a_finished_one_again(
    tmp_path: Path,
) -> None:
    import signal
    import time

    sweep_dir = tmp_path / "sweep"
    search = [*SEARCH, "hydra.sweeper.n_trials=3", "hydra.sweeper.max_concurrent_trials=1", "trainer.max_epochs=2"]
    cmd = [sys.executable, "src/train.py", "-m", *search, f"hydra.sweep.dir={sweep_dir}"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = sweep_dir / "trial_0" / "job.json"
    deadline = time.monotonic() + 240
    while not job.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert job.is_file() and not (sweep_dir / "trials.csv").exists()
    finished_at = job.stat().st_mtime

    rc, out = sweep(
        sweep_dir, "hydra.sweeper.n_trials=3", "hydra.sweeper.max_concurrent_trials=1", "trainer.max_epochs=2"
    )
    assert rc == 0, out[-3000:]
    assert "Resuming the search in" in out
    rows = trials(sweep_dir)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} == {"COMPLETE"}
    assert job.stat().st_mtime == finished_at  # trial 0 was not run again
    assert ray_processes() == [] and not (sweep_dir / ".ray_session").exists()


class DieOnce(L.Callback):
    """Kills its own process (SIGKILL, as a lost machine would) at the start of epoch ``epoch``, the first time only."""

    def __init__(self, marker: str, epoch: int) -> None:
        self.marker, self.epoch = Path(marker), epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import os
        import signal

        if trainer.current_epoch == self.epoch and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_trial_whose_process_dies_is_retried_from_its_last_checkpoint(tmp_path: Path) -> None:
    import os

    sweep_dir, marker = tmp_path / "sweep", tmp_path / "died"
    cmd = [
        sys.executable, "src/train.py", "-m", *SEARCH, "hydra.sweeper.n_trials=1", "hydra.sweeper.max_failures=1",
        "trainer.max_epochs=3", "+callbacks.die._target_=test_ray_tune.DieOnce", f"+callbacks.die.marker={marker}",
        "+callbacks.die.epoch=2", f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # the trial's worker imports DieOnce
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert marker.exists()  # it did die once
    [row] = trials(sweep_dir)
    assert row["state"] == "COMPLETE" and row["epochs"] == "3"
    log = (sweep_dir / "trial_0" / "train.log").read_text()
    assert "Resuming the run in" in log and "Restored all states" in done.stdout + done.stderr + log


def test_hydras_plugin_scan_finds_the_ray_sweeper_without_importing_ray_torch_or_optuna() -> None:
    scan = (
        "import json, sys\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.sweeper import Sweeper\n"
        "found = [p.__module__ + '.' + p.__name__ for p in Plugins.instance().discover(Sweeper)]\n"
        "heavy = [m for m in ('ray', 'torch', 'lightning', 'optuna') if m in sys.modules]\n"
        "print(json.dumps({'found': found, 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", scan], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["heavy"] == []
    assert "hydra_plugins.recipe_ray_tune_sweeper.sweeper.RayTuneSweeper" in result["found"]


CONDITIONAL = {
    "optimizer": "choice(adamw, sgd)",
    "optimizer.lr": {"optimizer=adamw": "range(1, 3)", "optimizer=sgd": "choice(10, 20)"},
    "optimizer.momentum": {"optimizer=sgd": "choice(0.8, 0.9)"},
}


def test_a_grid_combines_a_conditional_range_only_under_its_choice() -> None:
    from recipe.sweeps.ray.space import grid_points

    points = grid_points(SearchSpace.parse(CONDITIONAL))
    adamw = [p for p in points if p["optimizer"] == "adamw"]
    sgd = [p for p in points if p["optimizer"] == "sgd"]
    assert sorted(p["optimizer.lr"] for p in adamw) == [1, 2] and all("optimizer.momentum" not in p for p in adamw)
    assert len(sgd) == 4 and {(p["optimizer.lr"], p["optimizer.momentum"]) for p in sgd} == {
        (10, 0.8), (10, 0.9), (20, 0.8), (20, 0.9)
    }  # fmt: skip


def test_random_search_draws_a_conditional_value_from_its_choices_range_or_none() -> None:
    from types import SimpleNamespace

    from recipe.sweeps.ray.space import trial_values, tune_search

    _, param_space = tune_search("random", SearchSpace.parse(CONDITIONAL), None, "val/acc", "max")
    lr, momentum = param_space["optimizer.lr"].func, param_space["optimizer.momentum"].func
    for _ in range(20):
        assert lr(SimpleNamespace(config={"optimizer": "adamw"})) in (1, 2)
        assert lr(SimpleNamespace(config={"optimizer": "sgd"})) in (10, 20)
        assert momentum(SimpleNamespace(config={"optimizer": "adamw"})) is None
    config = {"optimizer": "adamw", "optimizer.lr": 2, "optimizer.momentum": None}
    assert trial_values(config) == {"optimizer": "adamw", "optimizer.lr": 2}
    assert trial_values({"optimizer.lr|optimizer=sgd": 10, "optimizer": "sgd"}) == {
        "optimizer.lr": 10,
        "optimizer": "sgd",
    }

"""The entry scripts as a user runs them: train, the LR curves in TensorBoard, eval, and bad input."""

import re
from pathlib import Path

import pytest
from conftest import run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recipe.cli.config import CONF_DIR
from recipe.cli.overrides import check_composes, check_group_choices, check_overrides
from train import main

SHORT = ["trainer.max_epochs=4", "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


def test_acc(output: str) -> float:
    return float(re.search(r"test/acc\s*│\s*([0-9.]+)", output).group(1))


test_acc.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def sgd_onecycle_run(tmp_path_factory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("run")
    args = ["optimizer=sgd", "scheduler=onecycle", "trainer.log_every_n_steps=1", *SHORT]
    result = run_script("train.py", *args, run_dir=run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result.stdout + result.stderr


def test_train_prints_config_accuracy_and_where_outputs_went(sgd_onecycle_run):
    run_dir, output = sgd_onecycle_run
    assert "optimizer" in output and "name: sgd" in output  # the config tree
    assert test_acc(output) > 0.8
    assert f"Outputs: {run_dir.resolve()}" in output
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def test_tensorboard_holds_per_step_lr_that_rises_then_falls_and_momentum(sgd_onecycle_run):
    run_dir, _ = sgd_onecycle_run
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    lr_tags = [t for t in events.Tags()["scalars"] if t.startswith("lr/") and not t.endswith("momentum")]
    assert lr_tags, events.Tags()["scalars"]
    lrs = [e.value for e in events.Scalars(lr_tags[0])]
    assert len(lrs) == 80  # one value per optimizer step: 20 batches per epoch, 4 epochs
    assert lrs[0] == pytest.approx(0.1 / 25)  # OneCycle starts at max_lr / div_factor
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1
    assert lrs[0] < max(lrs) and lrs[-1] < lrs[0]
    assert max(lrs) == pytest.approx(0.1, rel=0.02)  # SGD's default lr is OneCycle's peak
    momentum = [e.value for e in events.Scalars(lr_tags[0] + "-momentum")]
    assert momentum[0] == pytest.approx(0.95) and min(momentum) == pytest.approx(0.85, abs=1e-3)
    assert any(t.startswith("hp/") for t in events.Tags()["scalars"])


def test_eval_reproduces_the_test_accuracy(sgd_onecycle_run, tmp_path):
    run_dir, output = sgd_onecycle_run
    best = next(p for p in (run_dir / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt")
    result = run_script("eval.py", f"ckpt_path={best}", "trainer.enable_progress_bar=false", run_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert test_acc(result.stdout) == pytest.approx(test_acc(output), abs=1e-6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer.lr=-0.1"], "error: optimizer.lr=-0.1: must be a finite number > 0"),
        (["scheduler.min_lr=0.5"], "error: scheduler.min_lr=0.5: must not exceed optimizer.lr=0.001"),
        (
            ["scheduler.warmup=1000", "trainer.max_epochs=2"],
            "error: scheduler.warmup=1000: longer than the run's 40 steps",
        ),
        (["trainer.max_epochs=-1"], "error: scheduler=warmup_cosine needs a bounded run"),
        (["scheduler=onecycle", "trainer.max_epochs=-1"], "error: scheduler=onecycle needs a bounded run"),
        (["data.batch_size=0"], "error: data.batch_size=0: must be a positive integer"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(make_cfg, capsys, overrides, message):
    with pytest.raises(SystemExit) as stop:  # in this process: the command line's exit code is tested just below
        main(make_cfg(*SHORT, *overrides))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and errors == [errors[0]] and errors[0].startswith(message)


def test_unknown_optimizer_is_one_line_listing_the_choices(tmp_path):
    result = run_script("train.py", "optimizer=lars", run_dir=tmp_path / "run")
    assert result.returncode == 2 and not (tmp_path / "run").exists()  # stopped before Hydra made the folder
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: optimizer='lars': no such option 'lars'; choose from: adafactor, adam, adamw, ")


@pytest.mark.parametrize(
    "arg, message",
    [
        ("optimizer=adamw,sgdd", "optimizer='adamw,sgdd': no such option 'sgdd'; choose from: adafactor, "),
        ("logger=[tensorboard,mlfow]", "logger='[tensorboard,mlfow]': no such option 'mlfow'; choose from: csv, "),
        ("+experiment=mnist1d_cn", "experiment='mnist1d_cn': no such option 'mnist1d_cn'; choose from: digits_cnn, "),
        ("logger=null", "logger='null': a config group takes an option (~logger removes it); choose from: csv, "),
        ("debug=1", "debug='1': a config group takes an option; choose from: fast"),
    ],
)
def test_group_typos_in_sweeps_lists_and_additions_are_one_line(capsys, arg, message):
    with pytest.raises(SystemExit) as stop:
        check_group_choices(CONF_DIR, ["-m", "model=mlp", arg, "optimizer.lr=0.1"])
    assert stop.value.code == 2 and capsys.readouterr().err.startswith(f"error: {message}")


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "optimizer=adamw,sgd", "logger=[tensorboard,csv]", "~callbacks.progress_bar", "hydra/launcher=slurm"],
        ["optimizer=glob(*)", "experiment=mnist1d_cnn", "model.hidden_sizes=[64]"],
        ["hydra.searchpath=[file:///my/configs]", "optimizer=my_own"],  # another folder's options: Hydra's to check
        ["-cd", "my_conf", "data=my_data"],
        ["--config-dir=my_conf", "data=my_data"],
        ["-m", "logger=[tensorboard,csv],[csv]", "optimizer=choice(adamw,sgd)"],
        ["optimizer=${oc.env:OPT,adamw}", "trainer={max_epochs:3}"],
    ],
)
def test_good_group_choices_pass(args):
    check_group_choices(CONF_DIR, args)


@pytest.mark.parametrize(
    "args, message",
    [
        (["trainer.max_epohs=3"], "trainer.max_epohs=3: no such key in trainer; did you mean trainer.max_epochs? "),
        (["scheduler=cosine_restarts", "scheduler.cycle=0"], "scheduler.cycle=0: no such key in scheduler; did you "),
        (["optimizer=muon", "optimizer.betas=[0.9,0.95]"], "optimizer.betas=[0.9,0.95]: no such key in optimizer; "),
        (["optimizr=sgd"], "optimizr=sgd: no such key at the top level; did you mean optimizer? (+optimizr=sgd adds"),
        (["optimizer.lrr=0.1,0.01"], "optimizer.lrr=0.1,0.01: no such key in optimizer; did you mean optimizer.lr?"),
        (["hydra.run.dirr=x"], "hydra.run.dirr=x: no such key in hydra.run; did you mean hydra.run.dir?"),
        (["+optimizer.lr=0.1"], "Could not append to config. An item is already at 'optimizer.lr'. Either remove "),
        (["optimizer.lr=[1,"], "optimizer.lr=[1,: no viable alternative at input '[1,'"),
        (["model.hidden_sizes.x=3"], "the overrides do not compose: invalid literal for int()"),
    ],
)
def test_overrides_hydra_cannot_apply_are_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        check_composes(CONF_DIR, "train", args, multirun=True)
    [line] = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and line.startswith(f"error: {message}")


def test_an_option_missing_from_an_added_searchpath_is_one_line(capsys, tmp_path):
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "my_sgd.yaml").write_text((CONF_DIR / "optimizer" / "sgd.yaml").read_text())
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    check_overrides(CONF_DIR, "train", [searchpath, "optimizer=my_sgd"])
    with pytest.raises(SystemExit) as stop:
        check_overrides(CONF_DIR, "train", [searchpath, "optimizer=my_sgdd"])
    [line] = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2
    assert line.startswith("error: optimizer='my_sgdd': no such option 'my_sgdd'; choose from: ") and "my_sgd, " in line


def test_a_sweep_without_multirun_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        check_overrides(CONF_DIR, "train", ["optimizer=adamw,sgd"])
    [line] = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2
    assert line == "error: optimizer=adamw,sgd: a sweep: add -m to run each value (a list is optimizer=[...], " + (
        "a string optimizer='...')"
    )
    check_overrides(CONF_DIR, "train", ["-m", "optimizer=adamw,sgd"])
    check_overrides(CONF_DIR, "train", ["optimizer=adamw", "hydra.mode=MULTIRUN", "seed=0,1"])


@pytest.mark.parametrize(
    "config, args",
    [
        ("train", ["optimizer=adamw,sgd", "optimizer.lr=interval(1e-4,1e-1)", "seed=range(3)", "hydra/launcher=slurm"]),
        ("train", ["hparams_search=mnist1d_optuna", "experiment=mnist1d_cnn", "+trainer.detect_anomaly=true"]),
        ("train", ["seed=range(5,1)", "logger=[tensorboard,csv],[csv]", "trainer={max_epochs:3}"]),
        ("eval", ["ckpt_path=run/last.ckpt", "logger=[csv]"]),
    ],
)
def test_overrides_that_compose_pass(capsys, config, args):
    check_composes(CONF_DIR, config, args, multirun=True)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_group_given_a_boolean_names_its_options(tmp_path, script):
    result = run_script(script, "lr_find=true" if script == "train.py" else "logger=false", run_dir=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    key, options = ("lr_find", "apply, off, only, plot") if script == "train.py" else ("logger", "csv, mlflow")
    assert line.startswith(f"error: {key}='") and options in line


@pytest.mark.parametrize("content", [None, b"not a checkpoint", b"PK\x03\x04truncated"])
def test_eval_rejects_missing_or_unreadable_checkpoints(tmp_path, content):
    ckpt = tmp_path / "model.ckpt"
    if content is not None:
        ckpt.write_bytes(content)
    result = run_script("eval.py", f"ckpt_path={ckpt}", run_dir=tmp_path / "run")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: ckpt_path='{ckpt}'"), result.stderr[-2000:]

"""What a resume continues: the checkpoint's own run config with the command's keys on top (changes to what the run
trains refused in one line), and with ``ckpt_path=auto`` the newest checkpoint of the run folder that loads."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import ROOT
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from recipe.cli.config import compose_config
from recipe.errors import ConfigError
from recipe.runtime.resume_path import continued_run
from train import main, train

# the issue's run: none of it is the defaults' (warmup-cosine, 30 epochs, early stopping)
ORIGINAL = ["optimizer.lr=0.003", "scheduler=constant", "trainer.max_epochs=40", "~callbacks.early_stopping"]


@pytest.fixture
def stored(tmp_path):
    """A checkpoint holding the run config of ``ORIGINAL`` run in ``tmp_path/run``."""
    cfg = compose_config(f"paths.output_dir={tmp_path / 'run'}", *ORIGINAL)
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"run_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": {}}, path)
    return path


@pytest.fixture
def command(tmp_path):
    """The config of ``python src/train.py <overrides>`` as the task sees it, Hydra's own settings in place."""

    def make(*overrides: str, output_dir=None):
        output_dir = output_dir or tmp_path / "run"
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=[f"paths.output_dir={output_dir}", *overrides], return_hydra_config=True)
        cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg.hydra
        return cfg

    yield make
    HydraConfig.instance().cfg = None


def test_a_resume_continues_the_checkpoints_run_with_the_commands_keys_on_top(stored, command, caplog):
    with caplog.at_level(logging.INFO):
        run = continued_run(command(f"ckpt_path={stored}", "trainer.max_epochs=30", "logger=csv"))  # 30: the default
    assert run.scheduler.name == "constant" and run.optimizer.lr == 0.003 and "early_stopping" not in run.callbacks
    assert run.trainer.max_epochs == 30 and list(run.logger) == ["csv"] and run.ckpt_path == str(stored)
    assert f"Resuming the run in {stored} with its own config, changed: trainer.max_epochs=30 (was 40), " in caplog.text
    assert "~logger.tensorboard" in caplog.text and "+logger.csv={...}" in caplog.text


def test_a_resume_may_branch_a_new_schedule_from_the_run(stored, command):
    # docs/schedules.md: WSD decays of several lengths branched from one constant-LR run
    run = continued_run(command(f"ckpt_path={stored}", "scheduler=wsd", "trainer.max_epochs=50"))
    assert run.scheduler.name == "wsd" and run.trainer.max_epochs == 50 and run.optimizer.lr == 0.003


def test_the_same_command_again_changes_nothing(tmp_path, command, caplog):
    # ckpt_path=auto and a SLURM requeue run the first command again: group options and overlays included
    first = [*ORIGINAL[:3], "experiment=digits_cnn", "task=classification", "model.dropout=0.3", "logger=csv"]
    cfg = compose_config(f"paths.output_dir={tmp_path / 'run'}", *first)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    torch.save({"run_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": {}}, last)
    with caplog.at_level(logging.INFO):
        run = continued_run(command("ckpt_path=auto", f"hydra.run.dir={tmp_path / 'run'}", *first))
    assert OmegaConf.to_container(run) == {**OmegaConf.to_container(cfg, resolve=True), "ckpt_path": str(last)}
    assert f"Resuming the run in {last} with its own config\n" in caplog.text + "\n"


def test_a_resume_into_another_folder_writes_there(stored, command, tmp_path):
    run = continued_run(command(f"ckpt_path={stored}", output_dir=tmp_path / "elsewhere"))
    assert run.callbacks.last_checkpoint.dirpath == str(tmp_path / "elsewhere" / "checkpoints")
    assert run.trainer.default_root_dir == str(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("model.hidden_sizes=[512,512]", "model.hidden_sizes=[512, 512]: cannot change on resume, the run in "),
        ("model=cnn", "model._target_='recipe.models.CNN': cannot change on resume"),
        ("optimizer=sgd", "optimizer.name='sgd': cannot change on resume"),
        ("optimizer.lr=0.1", "optimizer.lr=0.1: cannot change on resume"),  # the restored optimizer state has its LR
        ("data.batch_size=32", "data.batch_size=32: cannot change on resume"),
        ("seed=1", "seed=1: cannot change on resume"),
    ],
)
def test_a_resume_that_changes_what_the_run_trains_is_refused_in_one_line(stored, command, override, says):
    with pytest.raises(ConfigError) as refused:
        continued_run(command(f"ckpt_path={stored}", override))
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)


def test_a_refused_resume_exits_2_with_one_line(stored, command, capsys):
    with pytest.raises(SystemExit) as stopped:  # a size-mismatch traceback from deep in Lightning
        main(command(f"ckpt_path={stored}", "model.hidden_sizes=[512,512]"))
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: model.hidden_sizes=[512, 512]: cannot change on resume")


RUN = [
    "model.hidden_sizes=[32]",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
    "~callbacks.run_report",
    "~logger",
    "~callbacks.lr_monitor",
    "test=false",
]


def test_ckpt_path_auto_past_a_torn_last_ckpt_resumes_from_the_newest_checkpoint_that_loads(tmp_path, caplog):
    # a torn last.ckpt stopped every later start (and each SLURM requeue) with "not a readable checkpoint"
    run_dir = tmp_path / "run"
    train(compose_config(f"paths.output_dir={run_dir}", *RUN))
    last = run_dir / "checkpoints" / "last.ckpt"
    (best,) = [p for p in last.parent.glob("*.ckpt") if p != last]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])

    with caplog.at_level(logging.INFO):
        train(compose_config(f"paths.output_dir={run_dir}", *RUN, "ckpt_path=auto", "trainer.max_epochs=3"))
    assert f"ckpt_path=auto: skipped ckpt_path='{last}': not a readable checkpoint" in caplog.text
    assert f"resuming from {best}, the newest that loads" in caplog.text
    assert torch.load(last, weights_only=True)["global_step"] == 3 * 4  # it went on to the end of the run

    for path in last.parent.glob("*.ckpt"):  # nothing loads: one line, never a fresh start over the run
        path.write_bytes(b"torn")
    with pytest.raises(ConfigError, match=f"ckpt_path='auto': no checkpoint in {run_dir} loads: "):
        train(compose_config(f"paths.output_dir={run_dir}", *RUN, "ckpt_path=auto"))

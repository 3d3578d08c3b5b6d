"""Runs at the edges: shorter than an epoch, without validation, or with a last batch of one sample."""

import pytest
import torch
from conftest import FAST, NO_LOGGER

from recipe.data.arrays import lone_last_sample
from recipe.data.synthetic import SyntheticDataModule
from recipe.errors import ConfigError
from recipe.validation.checks import check_train_config
from train import main, train


def test_a_run_that_max_steps_ends_inside_an_epoch_validates_and_tests_its_best(make_cfg, tmp_path):
    metrics = train(make_cfg("trainer.max_steps=3", *NO_LOGGER))  # an epoch is 4 batches: EarlyStopping raised
    assert {"val/loss", "val/acc_best", "test/acc"} <= set(metrics)
    assert [p.name for p in (tmp_path / "checkpoints").glob("epoch_*")] == [
        f"epoch_000-val_acc_{metrics['val/acc']:.4f}.ckpt"
    ]


@pytest.mark.parametrize(
    "overrides, off",
    [
        (["trainer.limit_val_batches=0"], "trainer.limit_val_batches=0"),
        (["trainer.check_val_every_n_epoch=3"], "trainer.check_val_every_n_epoch=3 with trainer.max_epochs=2"),
    ],
)
def test_val_metrics_watched_without_validation_are_rejected_before_training(
    make_cfg, capsys, tmp_path, overrides, off
):
    with pytest.raises(SystemExit) as exit_info:
        main(make_cfg(*FAST, *overrides))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"callbacks.model_checkpoint.monitor='val/acc': never logged: {off} turns validation off" in err
    assert "~callbacks.model_checkpoint ~callbacks.early_stopping optimized_metric=null" in err
    assert not (tmp_path / "checkpoints").exists()
    fixed = ["~callbacks.model_checkpoint", "~callbacks.early_stopping", "optimized_metric=null"]
    check_train_config(make_cfg(*FAST, *overrides, *fixed))


def test_a_plateau_scheduler_without_validation_is_told_to_use_another(make_cfg):
    off = ["trainer.limit_val_batches=0", "~callbacks.model_checkpoint", "~callbacks.early_stopping"]
    with pytest.raises(ConfigError, match=r"^scheduler.monitor='val/loss': .* add scheduler=cosine optimized"):
        check_train_config(make_cfg("scheduler=plateau", *off))


@pytest.mark.parametrize(
    "samples, batch, world, lone",
    [(9, 4, 1, True), (8, 4, 1, False), (1, 4, 1, False), (10, 4, 1, False), (10, 2, 2, True), (9, 2, 2, True)],
)
def test_lone_last_sample(samples, batch, world, lone):
    assert lone_last_sample(samples, batch, world) is lone


def test_a_last_training_batch_of_one_sample_is_dropped(make_cfg):
    dm = SyntheticDataModule(n_train=9, n_val=5, n_test=5, batch_size=4)
    dm.setup()
    assert [len(y) for _, y in dm.train_dataloader()] == [4, 4]
    assert [len(y) for _, y in dm.val_dataloader()] == [4, 1]  # evaluation keeps every sample
    data = ["data=synthetic", "data.n_train=9", "data.n_val=5", "data.n_test=5", "data.batch_size=4"]
    metrics = train(make_cfg(*data, "model.norm=batch", *NO_LOGGER))  # BatchNorm raised on the 1-sample batch
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))

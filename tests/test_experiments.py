"""Each experiment composes and trains a few batches end to end."""

import pytest
from conftest import NO_LOGGER, RecordLR

from train import train

EXPERIMENTS = ["mnist1d_mlp", "mnist1d_cnn", "mnist1d_transformer", "digits_cnn"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_trains_a_few_batches(name, make_cfg, tmp_path):
    cfg = make_cfg(f"experiment={name}", *NO_LOGGER, f"paths.data_dir={tmp_path}/data")
    recorder = RecordLR()
    metrics = train(cfg, extra_callbacks=[recorder])
    assert set(metrics) >= {"val/acc_best", "test/acc", "test/loss"}
    assert 0 < max(recorder.lrs) <= cfg.optimizer.lr * (1 + 1e-6)  # the experiment's LR, never above
    assert cfg.task_name == name

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


@pytest.mark.parametrize(
    ("overrides", "lr", "weight_decay"),
    [
        (["experiment=mnist1d_transformer"], 2e-3, 0.05),  # its tuning of its own optimizer, AdamW
        (["experiment=mnist1d_transformer", "optimizer=sgd"], 0.1, 5e-4),  # sgd.yaml's, not AdamW's tuning
        (["experiment=mnist1d_transformer", "optimizer=sam"], 1e-3, 0.01),  # SAM on AdamW is not AdamW itself
        (["experiment=mnist1d_transformer", "optimizer.lr=0.01"], 0.01, 0.05),  # the command line wins
        (["experiment=mnist1d_cnn", "optimizer=lion", "optimizer.lr=1e-5"], 1e-5, 0.1),
    ],
)
def test_an_experiments_optimizer_tuning_applies_to_its_own_optimizer_only(make_cfg, overrides, lr, weight_decay):
    cfg = make_cfg(*overrides)
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay) == pytest.approx((lr, weight_decay))

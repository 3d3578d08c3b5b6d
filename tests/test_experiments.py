"""Each experiment composes and trains a few batches end to end."""

import pytest
from conftest import NO_LOGGER

from train import train

EXPERIMENTS = ["mnist1d_mlp", "mnist1d_cnn", "mnist1d_transformer", "digits_cnn"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_trains_a_few_batches(name, make_cfg, tmp_path):
    cfg = make_cfg(f"experiment={name}", *NO_LOGGER, f"paths.data_dir={tmp_path}/data")
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["train/loss"] > 0

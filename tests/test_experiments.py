"""Each experiment composes and trains a few batches end to end."""

import pytest

from recipe.tasks import train

FAST = [
    f"++trainer.{k}"
    for k in (
        "max_epochs=2",
        "limit_train_batches=4",
        "limit_val_batches=2",
        "limit_test_batches=2",
        "num_sanity_val_steps=0",
        "enable_progress_bar=false",
    )
]
FAST += ["~callbacks.progress_bar", "~callbacks.model_summary", "~callbacks.lr_monitor"]

EXPERIMENTS = ["mnist1d_mlp", "mnist1d_cnn", "digits_cnn"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_trains_a_few_batches(name, make_cfg, tmp_path):
    cfg = make_cfg(f"experiment={name}", *FAST, "~logger", f"paths.data_dir={tmp_path}/data")
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["train/loss"] > 0

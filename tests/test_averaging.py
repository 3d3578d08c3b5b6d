"""EMA and SWA callbacks change the weights that are validated, checkpointed and tested."""

import pytest
import torch

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


def test_ema_checkpoint_holds_the_averaged_weights(make_cfg, tmp_path):
    cfg = make_cfg("callbacks=ema", "callbacks.ema.decay=0.9", *FAST, "~logger")
    train(cfg)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, current = ckpt["state_dict"], ckpt["current_model_state"]
    weight = "net.layers.1.weight"
    assert not torch.equal(averaged[weight], current[weight])


def test_swa_replaces_the_final_weights(make_cfg, tmp_path):
    overrides = [*FAST, "~logger", "trainer.max_epochs=3"]
    plain = train(make_cfg(*overrides, "callbacks.model_checkpoint=null"))
    averaged = train(make_cfg("callbacks=swa", "callbacks.swa.swa_epoch_start=1", *overrides))
    assert averaged["test/loss"] != pytest.approx(plain["test/loss"], abs=1e-7)

"""EMA and SWA callbacks change the weights that are validated, checkpointed and tested; `test_weights` picks them."""

import lightning as L
import pytest
import torch
from conftest import NO_LOGGER

from recipe.errors import ConfigError
from recipe.validate import check_train_config
from train import train


class WeightsSeen(L.Callback):
    """Copies of the module's weights as training ended (``final``) and as the test started (``tested``)."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.final = {k: v.clone() for k, v in pl_module.state_dict().items()}

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.tested = {k: v.clone() for k, v in pl_module.state_dict().items()}


def test_ema_checkpoint_holds_the_averaged_weights(make_cfg, tmp_path):
    cfg = make_cfg("callbacks=ema", "callbacks.ema.decay=0.9", "callbacks.model_checkpoint.monitor=null", *NO_LOGGER)
    seen = WeightsSeen()
    train(cfg, [seen])
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, current = ckpt["state_dict"], ckpt["current_model_state"]
    weight = "net.layers.1.weight"
    assert not torch.equal(averaged[weight], current[weight])
    assert torch.equal(seen.tested[weight], averaged[weight])  # the test split saw the averaged weights


def test_swa_replaces_the_final_weights(make_cfg, tmp_path):
    overrides = [*NO_LOGGER, "trainer.max_epochs=3"]
    plain = train(make_cfg(*overrides, "callbacks.model_checkpoint=null"))
    averaged = train(make_cfg("callbacks=swa", "callbacks.swa.swa_epoch_start=1", *overrides))
    assert averaged["test/loss"] != pytest.approx(plain["test/loss"], abs=1e-7)


@pytest.mark.parametrize("test_weights", ["best", "last"])
def test_test_weights_picks_the_best_checkpoint_or_the_final_weights(make_cfg, tmp_path, test_weights):
    # mode=max on a falling val/loss keeps epoch 0 as the "best", so best and final weights differ
    best_is_first = ["callbacks.model_checkpoint.monitor=val/loss", "callbacks.model_checkpoint.mode=max"]
    cfg = make_cfg(*NO_LOGGER, "trainer.max_epochs=3", *best_is_first, f"test_weights={test_weights}")
    seen = WeightsSeen()
    train(cfg, [seen])
    (best_path,) = (tmp_path / "checkpoints").glob("epoch_000-*.ckpt")
    best = torch.load(best_path, weights_only=True)["state_dict"]
    weight = "net.layers.1.weight"
    assert not torch.equal(best[weight], seen.final[weight])
    expected = best if test_weights == "best" else seen.final
    assert torch.equal(seen.tested[weight], expected[weight])


def test_an_unknown_test_weights_is_one_line_before_training(make_cfg):
    with pytest.raises(ConfigError, match=r"^test_weights='final': .*best, last$"):
        check_train_config(make_cfg(*NO_LOGGER, "test_weights=final"))

"""EMA and SWA callbacks change the weights that are validated, checkpointed and tested; `test_weights` picks them.
The EMA's horizon is a fraction of the run, so a short run's average is not its untrained weights."""

import lightning as L
import pytest
import torch
from conftest import FAST, NO_LOGGER
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

from recipe.callbacks.ema import EMA, power_ema_avg_fn
from recipe.errors import ConfigError
from recipe.validation.checks import check_train_config
from train import train


class WeightsSeen(L.Callback):
    """Copies of the module's weights as training ended (``final``) and as the test started (``tested``), in CPU
    memory like the checkpoints they are compared with (the background saves copy every tensor there)."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.final = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.tested = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}


def test_ema_checkpoint_holds_the_averaged_weights(make_cfg, tmp_path):
    cfg = make_cfg("callbacks=ema", "callbacks.ema.horizon=0.5", "callbacks.model_checkpoint.monitor=null", *NO_LOGGER)
    seen = WeightsSeen()
    train(cfg, [seen])
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
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
    best = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
    weight = "net.layers.1.weight"
    assert not torch.equal(best[weight], seen.final[weight])
    expected = best if test_weights == "best" else seen.final
    assert torch.equal(seen.tested[weight], expected[weight])


def test_an_unknown_test_weights_is_one_line_before_training(make_cfg):
    with pytest.raises(ConfigError, match=r"^test_weights='final': .*best, last$"):
        check_train_config(make_cfg(*NO_LOGGER, "test_weights=final"))


def average_of_a_ramp(avg_fn, steps: int) -> float:
    """The average after ``steps`` updates of a weight that moves 1, 2, ..., steps, starting from 0."""
    weight = nn.Linear(1, 1, bias=False)
    averaged = AveragedModel(weight, avg_fn=avg_fn)
    with torch.no_grad():
        weight.weight.zero_()
        averaged.update_parameters(weight)
        for step in range(1, steps + 1):
            weight.weight.fill_(step)
            averaged.update_parameters(weight)
    return averaged.module.weight.item()


@pytest.mark.parametrize("steps", [100, 600, 5000])
def test_the_average_lags_a_fixed_fraction_of_the_run(steps):
    # a power-function average with horizon h weights update k as k ** (1/h - 1): over a ramp it lags by
    # steps * h / (1 + h), whatever the run's length
    lag = steps - average_of_a_ramp(power_ema_avg_fn(0.1), steps)
    assert lag == pytest.approx(steps * 0.1 / 1.1, rel=0.05)


def test_a_fixed_decay_of_0999_lags_most_of_a_short_run():
    # Lightning's default: after 600 steps the average still holds 55% of the start
    assert 600 - average_of_a_ramp(get_ema_avg_fn(0.999), 600) > 0.4 * 600


def test_a_short_ema_run_validates_near_the_plain_one(make_cfg):
    # 3 epochs of 4 steps: a 0.999 decay validated the nearly untrained weights (val/acc 0.18 in the issue)
    short = [*FAST, "~logger", "~callbacks.lr_monitor", "trainer.max_epochs=3", "test=false"]
    plain = train(make_cfg(*short))["val/acc"]
    averaged = train(make_cfg(*short, "callbacks=ema"))["val/acc"]
    assert averaged > 0.9 * plain > 0.3


@pytest.mark.parametrize("horizon", [0, 1.5, "0.1"])
def test_a_horizon_outside_0_1_is_rejected(horizon):
    with pytest.raises(ConfigError, match=rf"^callbacks.ema.horizon={horizon!r}: "):
        EMA(horizon=horizon)


@pytest.mark.parametrize(
    ("every", "from_step", "from_epoch"), [(1, None, None), (3, None, None), (2, 5, None), (1, None, 2), (0, 4, 1)]
)
def test_the_ema_updates_when_lightnings_ema_does(every, from_step, from_epoch):
    kwargs = dict(update_every_n_steps=every, update_starting_at_step=from_step, update_starting_at_epoch=from_epoch)
    ours, lightnings = EMA(**kwargs), EMAWeightAveraging(**kwargs)
    for step, epoch in [(s, None) for s in range(12)] + [(None, e) for e in range(4)]:
        assert ours.should_update(step, epoch) == lightnings.should_update(step, epoch), (step, epoch)

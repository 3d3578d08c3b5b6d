"""The Regressor's settings, and the task a run does: named, or the data's."""

import pytest
import torch

from recipe.build import check_task
from recipe.errors import ConfigError
from recipe.regression import Regressor


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"loss": "hinge"}, "module.loss='hinge'"),
        ({"huber_delta": 0.0}, "module.huber_delta=0.0"),
        ({"num_classes": 3}, "num_classes=3"),
    ],
)
def test_bad_regressor_settings(kwargs, key):
    with pytest.raises(ConfigError, match=f"^{key}"):
        Regressor(torch.nn.Linear(2, 1), **kwargs)


def test_huber_loss_uses_its_delta():
    module = Regressor(torch.nn.Linear(2, 1), loss="huber", huber_delta=0.5)
    assert module.criterion(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(0.5 * (2 - 0.25))


def test_the_task_must_be_the_datas():
    check_task("regression", "regression")
    with pytest.raises(
        ConfigError, match=r"^task='classification': but the data is for regression: add task=regression"
    ):
        check_task("classification", "regression")


def test_task_regression_sets_module_metric_and_monitor(make_cfg):
    cfg = make_cfg("task=regression", "optimized_metric=val/r2")
    assert cfg.module._target_ == "recipe.regression.Regressor" and cfg.optimized_metric == "val/r2"
    assert cfg.callbacks.model_checkpoint.monitor == "val/loss" and cfg.callbacks.model_checkpoint.mode == "min"

"""The Regressor's settings, and the task a run does: named, or the data's."""

import pytest
import torch
from omegaconf import OmegaConf

from recipe.errors import ConfigError
from recipe.tasks.registry import choose_task
from recipe.tasks.regression import Regressor


class Data:
    def __init__(self, task: str) -> None:
        self.task = task


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


def test_task_follows_the_data_and_keeps_the_users_values(make_cfg):
    cfg = make_cfg("optimized_metric=val/r2", "callbacks.model_checkpoint.filename=best")
    assert choose_task(cfg, Data("regression")) == "regression"
    assert cfg.module._target_ == "recipe.tasks.regression.Regressor" and cfg.task == "regression"
    assert cfg.optimized_metric == "val/r2" and cfg.callbacks.model_checkpoint.filename == "best"  # the user's
    assert cfg.callbacks.model_checkpoint.monitor == "val/loss" and cfg.callbacks.model_checkpoint.mode == "min"


def test_classification_data_keeps_the_defaults(make_cfg):
    cfg = make_cfg()
    assert choose_task(cfg, Data("classification")) == "classification"
    assert cfg.module._target_ == "recipe.tasks.classification.Classifier" and cfg.optimized_metric == "val/acc_best"


def test_task_named_must_match_the_data():
    with pytest.raises(ConfigError, match=r"^task=.regression.: but the data is for classification"):
        choose_task(OmegaConf.create({"task": "regression"}), object())

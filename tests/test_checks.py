"""Nonsense ``trainer`` values fail before training, in one line naming the key and what is allowed."""

import re

import pytest
from omegaconf import OmegaConf

from recipe.errors import ConfigError
from recipe.validation.checks import check_trainer_config
from train import main


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("max_epochs", 0, "-1 (no limit) or an integer >= 1"),
        ("max_steps", 0, "-1 (no limit) or an integer >= 1"),
        ("min_epochs", -1, "null or an integer >= 0"),
        ("accumulate_grad_batches", 0, "an integer >= 1"),
        ("gradient_clip_val", -1.0, "null or a number >= 0"),
        ("gradient_clip_algorithm", "l2", "norm or value"),
        ("check_val_every_n_epoch", 0, "null or an integer >= 1"),
        ("log_every_n_steps", 0, "an integer >= 1"),
        ("num_sanity_val_steps", -2, "-1 (all batches) or an integer >= 0"),
        ("limit_train_batches", 1.5, "a fraction in (0, 1] or a number of batches >= 1 (0 trains nothing)"),
        ("limit_train_batches", 0, "a fraction in (0, 1] or a number of batches >= 1 (0 trains nothing)"),
        ("limit_val_batches", -1, "a fraction in [0, 1] or a whole number of batches"),
    ],
)
def test_each_rule(key, value, allowed):
    with pytest.raises(ConfigError) as caught:
        check_trainer_config(OmegaConf.create({key: value}))
    assert str(caught.value) == f"trainer.{key}={value!r}: must be {allowed}"


def test_the_default_trainer_passes_and_min_epochs_may_not_exceed_max_epochs(make_cfg):
    check_trainer_config(make_cfg().trainer)
    with pytest.raises(ConfigError, match=re.escape("trainer.min_epochs=5: must not exceed trainer.max_epochs=3")):
        check_trainer_config(OmegaConf.create({"max_epochs": 3, "min_epochs": 5}))


def test_train_rejects_before_building_anything(make_cfg, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(make_cfg("trainer.accumulate_grad_batches=0"))
    assert exit_info.value.code == 2
    assert "error: trainer.accumulate_grad_batches=0: must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()

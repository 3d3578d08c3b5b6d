"""The engine's contracts with your code: a data module is a Protocol checked once; a task is an option of
conf/task; a top-level key of your own is declared in conf/train.yaml, with no engine file edited."""

from __future__ import annotations

import shutil

import pytest

from recipe.data.contract import DataModule, check_data_module, optional
from recipe.errors import ConfigError
from recipe.tasks import registry
from recipe.validation import checks


class Shapeless:
    num_classes = 3

    def train_dataloader(self): ...


class Complete(Shapeless):
    input_shape = (4,)


def test_a_data_module_without_input_shape_is_one_line_naming_it():
    with pytest.raises(ConfigError, match=r"data._target_='my_project.data.Shapeless': has no input_shape"):
        check_data_module(Shapeless(), "my_project.data.Shapeless")
    check_data_module(Complete(), "my_project.data.Complete")
    assert isinstance(Complete(), DataModule) and not isinstance(Shapeless(), DataModule)


def test_optional_attributes_have_their_meaning_when_absent():
    assert optional(Complete(), "task") == "classification"
    assert optional(Complete(), "batch_size") is None
    with_batch = Complete()
    with_batch.batch_size = 32
    assert optional(with_batch, "batch_size") == 32


@pytest.fixture
def own_conf(tmp_path, monkeypatch):
    """A copy of conf/ that a user has edited, seen by the registry and the checks."""
    conf = tmp_path / "conf"
    shutil.copytree(registry.CONF_DIR, conf)
    monkeypatch.setattr(registry, "CONF_DIR", conf)
    monkeypatch.setattr(checks, "CONF_DIR", conf)
    return conf


def test_a_new_task_is_a_module_config_and_a_task_yaml(own_conf, make_cfg):
    (own_conf / "module" / "ranker.yaml").write_text("_target_: my_project.tasks.Ranker\nmargin: 1.0\n")
    (own_conf / "task" / "ranking.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /module: ranker\n\ntask: ranking\n"
    )
    assert registry.tasks() == ["classification", "ranking", "regression"]
    assert "my_project.tasks.Ranker" in registry.module_targets()
    cfg = make_cfg()
    cfg.task = "ranking"
    checks.check_train_config(cfg)
    cfg.task = "sorting"
    with pytest.raises(ConfigError, match=r"task='sorting': one of classification, ranking, regression"):
        checks.check_train_config(cfg)


def test_a_top_level_key_of_your_own_is_declared_in_train_yaml(own_conf, make_cfg):
    cfg = make_cfg("+tags=[baseline]", "+notes=first try")
    with pytest.raises(ConfigError, match=r"tags=.*declare your own in conf/train.yaml"):
        checks.check_train_config(cfg)
    with (own_conf / "train.yaml").open("a") as f:
        f.write("\ntags: []\nnotes: null\n")
    checks.check_train_config(cfg)
    with pytest.raises(ConfigError, match=r"optimizr='sgd': not a setting"):  # a typo is still one
        checks.check_train_config(make_cfg("+optimizr=sgd"))

"""data=csv brings the training measured best for small tables (docs/data.md), and the command line still wins;
TabM's output is the ensemble's prediction; a table no benchmark saw trains with no other setting."""

import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import torch
from conftest import run_script
from omegaconf import OmegaConf

from recipe.cli.config import compose_config
from recipe.errors import ConfigError
from recipe.models import TabM

TABLE = ["data=csv", "data.path=t.csv", "data.target=y"]


def test_data_csv_brings_the_table_model_and_training():
    cfg = compose_config(*TABLE)
    assert cfg.model._target_ == "recipe.models.TabM" and cfg.data.batch_size == 32
    assert (cfg.trainer.precision, cfg.trainer.max_epochs) == ("32-true", 100)
    assert (cfg.callbacks.model_checkpoint.monitor, cfg.callbacks.model_checkpoint.mode) == ("val/loss", "min")
    digits = compose_config()  # other data keep the template's defaults
    assert digits.model._target_ == "recipe.models.MLP" and digits.trainer.max_epochs == 30
    assert digits.callbacks.model_checkpoint.monitor == "val/acc"


@pytest.mark.parametrize(
    "override, key, value",
    [
        ("model=mlp", "model._target_", "recipe.models.MLP"),
        ("model=cnn", "model._target_", "recipe.models.CNN"),
        ("trainer.max_epochs=7", "trainer.max_epochs", 7),
        ("trainer=cpu", "trainer.accelerator", "cpu"),
        ("data.batch_size=128", "data.batch_size", 128),
        ("callbacks.model_checkpoint.monitor=val/acc", "callbacks.model_checkpoint.monitor", "val/acc"),
    ],
)
def test_the_command_line_wins_over_the_table_defaults(override, key, value):
    cfg = compose_config(*TABLE, override)
    assert OmegaConf.select(cfg, key) == value
    if override.startswith("model="):
        assert "k" not in cfg.model  # the option replaces TabM's keys, none is merged in


def test_tabm_predicts_the_mean_of_its_members():
    torch.manual_seed(0)
    x = torch.randn(5, 3)
    classifier = TabM((3,), 4, k=8).eval()
    members = classifier.ensemble(x_num=x).softmax(-1)  # (5, 8, 4)
    log_probs = classifier(x)
    assert log_probs.shape == (5, 4)
    assert torch.allclose(log_probs.exp(), members.mean(1), atol=1e-6)  # log of the mean probability, normalized
    regressor = TabM((3,), 1, k=8).eval()
    assert torch.allclose(regressor(x), regressor.ensemble(x_num=x).mean(1))


@pytest.mark.parametrize(
    "kwargs, key",
    [({"k": 0}, "model.k"), ({"dropout": 1.5}, "model.dropout"), ({"embeddings": "x"}, "model.embeddings")],
)
def test_tabm_refuses_bad_settings(kwargs, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        TabM((3,), 2, **kwargs)


def test_periodic_embeddings_train_a_step():
    net = TabM((3,), 2, k=4, embeddings="periodic")
    loss = torch.nn.functional.cross_entropy(net(torch.randn(6, 3)), torch.tensor([0, 1] * 3))
    loss.backward()
    assert math.isfinite(loss.item()) and any(
        p.grad is not None and p.grad.abs().sum() > 0 for n, p in net.named_parameters() if "num_module" in n
    )


def test_tabm_loads_without_torchvision():
    """torchvision cannot be imported beside the CPU torch wheel: the table default must not pull it in."""
    code = "import sys, recipe.models; assert 'tabm' in sys.modules and 'torchvision' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


def test_a_new_table_with_strings_gaps_and_a_skewed_column_trains_with_no_other_setting(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    income = rng.lognormal(10, 1.5, n)  # skewed: a few rows hundreds of times the median
    city = rng.choice(["Lyon", "Oslo", "Kyoto"], n)
    age = rng.uniform(20, 70, n)
    label = np.where(np.log(income) - 10 + 1.5 * (city == "Oslo") - (age - 45) / 15 > 0, "yes", "no")
    age_cells = [None if i % 10 == 0 else float(a) for i, a in enumerate(age)]  # every tenth cell empty
    city_cells = [None if i % 17 == 0 else c for i, c in enumerate(city)]
    table = pa.table({"income": income, "city": city_cells, "age": age_cells, "bought": label})
    pacsv.write_csv(table, tmp_path / "shop.csv")
    run = tmp_path / "run"
    result = run_script(
        "train.py", "data=csv", f"data.path={tmp_path / 'shop.csv'}", "data.target=bought", "data.missing=impute",
        "trainer.max_epochs=15", run_dir=run,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "_target_: recipe.models.TabM" in config
    printed = (result.stdout + result.stderr).splitlines()
    accuracy = float(next(line for line in printed if "test/acc" in line).split("│")[2])
    assert accuracy > 0.7  # the majority class: 0.58

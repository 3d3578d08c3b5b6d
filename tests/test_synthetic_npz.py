"""Synthetic data (shapes, determinism, learnable) and the npz module (round trips and each of its errors)."""

import numpy as np
import pytest
import torch
from conftest import FAST

from recipe.build import build
from recipe.data.npz import NpzDataModule
from recipe.data.synthetic import SyntheticDataModule
from recipe.errors import ConfigError
from train import train


def tensors(dm, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    dm.setup()
    return dm.datasets[split].tensors


def test_synthetic_shapes_and_sizes():
    dm = SyntheticDataModule(n_train=50, n_val=20, n_test=30, input_shape=[3, 4, 5], num_classes=3)
    assert dm.input_shape == (3, 4, 5) and dm.num_classes == 3
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [50, 20, 30]
    assert set(tensors(dm, "train")[1].tolist()) == {0, 1, 2}


def test_synthetic_is_deterministic_for_a_seed():
    make = lambda seed: SyntheticDataModule(n_train=40, n_val=10, n_test=10, input_shape=[8], seed=seed)  # noqa: E731
    a, b, c = make(1), make(1), make(2)
    for split in ("train", "val", "test"):
        assert all(torch.equal(u, v) for u, v in zip(tensors(a, split), tensors(b, split), strict=True))
    assert not torch.equal(tensors(a, "train")[0], tensors(c, "train")[0])


def test_synthetic_is_learnable_through_its_config(make_cfg):
    cfg = make_cfg(
        "data=synthetic", "data.noise=2.0", "model=mlp", "model.hidden_sizes=[32]", "optimizer.lr=1e-2", *FAST,
        "trainer.max_epochs=4", "trainer.limit_train_batches=16", "trainer.limit_val_batches=4",
        "trainer.limit_test_batches=4", "logger=csv",
    )  # fmt: skip
    assert train(cfg)["test/acc"] > 0.7  # chance is 0.1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_train": 0}, r"^data.n_train=0: must be a positive integer$"),
        ({"input_shape": [4, 0]}, r"^data.input_shape=\[4, 0\]: a non-empty list of positive sizes$"),
        ({"num_classes": 1}, r"^data.num_classes=1: must be an integer >= 2$"),
        ({"noise": -1.0}, r"^data.noise=-1.0: must be >= 0$"),
    ],
)
def test_synthetic_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SyntheticDataModule(**kwargs)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(100, 1, 12)), "y": np.arange(100) % 4}


def save(tmp_path, **arrays) -> str:
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_round_trip_carves_test_and_val(tmp_path, make_cfg, arrays):
    datamodule, module = build(make_cfg("data=npz", f"data.path={save(tmp_path, **arrays)}", "data.standardize=false"))
    assert datamodule.input_shape == (1, 12) and datamodule.num_classes == 4
    assert [len(datamodule.datasets[s]) for s in ("train", "val", "test")] == [70, 10, 20]
    seen = torch.cat([tensors(datamodule, s)[0] for s in ("train", "val", "test")])[:, 0, 0].numpy()
    assert np.array_equal(np.sort(seen), np.sort(arrays["x"][:, 0, 0].astype(np.float32)))  # every sample, once
    assert module.net(tensors(datamodule, "train")[0][:2]).shape == (2, 4)


def test_npz_with_test_arrays_keeps_them(tmp_path, arrays):
    x_test, y_test = np.full((10, 1, 12), 7.0), np.array([0, 1, 2, 3, 4] * 2)
    dm = NpzDataModule(save(tmp_path, **arrays, x_test=x_test, y_test=y_test), val_fraction=0.2, standardize=False)
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [80, 20, 10]
    x, y = tensors(dm, "test")
    assert torch.equal(x, torch.full((10, 1, 12), 7.0)) and y.tolist() == y_test.tolist()
    assert dm.num_classes == 5  # the test labels count too


def test_npz_validation_split_follows_the_seed(tmp_path, arrays):
    path = save(tmp_path, **arrays)
    first, again, other = (tensors(NpzDataModule(path, seed=seed), "val")[0] for seed in (0, 0, 1))
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"y": None}, r"has no array 'y'; its arrays: \['x'\]"),
        ({"y_test": np.zeros(5)}, r"has no array 'x_test'; its arrays: \['x', 'y', 'y_test'\]"),
        ({"y": np.zeros(99)}, r"^data.path\['y'\]=\(99,\): needs one label per sample of x \(100, 1, 12\)$"),
        ({"y": np.full(100, -1)}, r"^data.path\['y'\]=-1: labels must be in 0..num_classes - 1$"),
        ({"y": np.full(100, 0.5)}, r"^data.path\['y'\]=0.5: labels must be whole numbers$"),
        ({"y": np.array(["a"] * 100)}, r"^data.path\['y'\]='<U1': must be numeric"),
        ({"x": np.array([["a"] * 12] * 100)}, r"^data.path\['x'\]='<U1': must be numeric"),
        ({"x": np.full((100, 12), np.nan)}, r"^data.path\['x'\]='nan/inf': every value must be finite$"),
        (
            {"x_test": np.zeros((5, 12)), "y_test": np.zeros(5)},
            r"^data.path\['x_test'\]=\(5, 12\): samples must have the shape of x's \(1, 12\)$",
        ),
    ],
)
def test_npz_errors(tmp_path, arrays, change, message):
    arrays.update(change)
    path = save(tmp_path, **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(ConfigError, match=message) as err:
        NpzDataModule(path).setup()
    assert "\n" not in str(err.value)


def test_npz_labels_beyond_num_classes(tmp_path, arrays):
    with pytest.raises(ConfigError, match=r"^data.path\['y'\]=3: labels must be in 0..2$"):
        NpzDataModule(save(tmp_path, **arrays), num_classes=3).setup()


def test_npz_object_arrays_are_refused_without_running_pickle(tmp_path, arrays):
    path = save(tmp_path, x=arrays["x"], y=np.array([{"label": 1}] * 100, dtype=object))
    with pytest.raises(ConfigError, match=r"^data.path=.*: holds non-numeric arrays"):
        NpzDataModule(path).setup()


@pytest.mark.parametrize("content", [None, b"not a zip"])
def test_npz_missing_or_unreadable_file(tmp_path, make_cfg, content):
    path = tmp_path / "mine.npz"
    if content is not None:
        path.write_bytes(content)
    message = "no such file" if content is None else "not a .npz file"
    with pytest.raises(ConfigError, match=rf"^data.path='{path}': {message}"):
        build(make_cfg("data=npz", f"data.path={path}"))

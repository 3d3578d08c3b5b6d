"""Data: MNIST-1D generation and cache, digits as images, random shift augmentation."""

import numpy as np
import pytest
import torch

from recipe.data import DigitsDataModule, MNIST1DDataModule, RandomShift, mnist1d


def test_mnist1d_is_deterministic_and_cached(tmp_path, monkeypatch):
    first = mnist1d.load_or_generate(tmp_path, seed=42)
    assert first["x"].shape == (4000, 40) and first["x_test"].shape == (1000, 40)
    monkeypatch.setattr(mnist1d, "generate", lambda seed: pytest.fail("regenerated a valid cache"))
    again = mnist1d.load_or_generate(tmp_path, seed=42)
    assert all(np.array_equal(first[k], again[k]) for k in mnist1d.KEYS)


def test_damaged_cache_is_regenerated(tmp_path):
    (tmp_path / "mnist1d_seed42.npz").write_bytes(b"not a zip")
    data = mnist1d.load_or_generate(tmp_path, seed=42)
    assert mnist1d.load_cache(tmp_path / "mnist1d_seed42.npz") is not None
    assert data["y"].shape == (4000,)


def test_mnist1d_splits(tmp_path):
    dm = MNIST1DDataModule(str(tmp_path), val_fraction=0.1, seed=3)
    assert dm.input_shape == (1, 40) and dm.num_classes == 10
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [3600, 400, 1000]


def test_digits_as_images():
    dm = DigitsDataModule(as_image=True)
    assert dm.input_shape == (1, 8, 8)


def test_random_shift_moves_signals_with_zero_fill():
    torch.manual_seed(0)
    x = torch.arange(1.0, 11.0).repeat(64, 1, 1)
    shifted = RandomShift(max_shift=2, spatial_dims=1)(x)
    for row in shifted[:, 0]:
        nonzero = row[row != 0]
        start = int(nonzero[0].item())
        assert torch.equal(nonzero, torch.arange(float(start), start + len(nonzero)))
    assert len({tuple(r.tolist()) for r in shifted[:, 0]}) > 1

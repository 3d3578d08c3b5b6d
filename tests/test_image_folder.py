"""data=image_folder: both layouts, mixed sizes and modes, memory vs lazy decoding, augmentation, predictions."""

import csv

import numpy as np
import pytest
import torch
from conftest import NO_LOGGER
from PIL import Image

from recipe.data.augment import RandomResizedCropFlip
from recipe.data.image_folder import ImageFolderDataModule
from recipe.tasks.predict import predict
from train import train


def make_folder(root, per_class: int = 12, classes=("circle", "square"), size: int = 12) -> None:
    """Class folders of small images, bright on the left half for the first class and on the right for the second,
    saved with mixed sizes, modes and formats."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size, size), dtype=np.uint8)
            half = slice(0, size // 2) if c == 0 else slice(size // 2, size)
            pixels[:, half] += 180
            image = Image.fromarray(pixels)
            if i % 3 == 1:
                image = image.convert("RGB").resize((size * 2, size * 2))
            image.save(root / name / f"{i}.{'jpg' if i % 3 == 2 else 'png'}")


def test_class_folders_are_split_resized_and_standardized(tmp_path):
    make_folder(tmp_path)
    dm = ImageFolderDataModule(
        str(tmp_path), image_size=[8, 10], mode="grayscale", val_fraction=0.25, test_fraction=0.25
    )
    assert dm.class_names == ["circle", "square"] and dm.input_shape == (1, 8, 10)
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [12, 6, 6]
    x, y = dm.datasets["train"].tensors
    assert x.dtype == torch.uint8 and x.shape[1:] == (1, 8, 10)
    normalized = dm.normalize(x)
    assert abs(normalized.mean().item()) < 1e-4 and normalized.std().item() == pytest.approx(1.0, abs=0.05)
    left = x[:, 0, :, :5].float().mean((1, 2)) > x[:, 0, :, 5:].float().mean((1, 2))
    assert torch.equal(left, y == 0)  # the labels follow the folders


def test_train_val_test_folders_are_used_as_given(tmp_path):
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        make_folder(tmp_path / split, per_class=n)
    dm = ImageFolderDataModule(str(tmp_path), image_size=6)
    dm.setup()
    assert dm.input_shape == (3, 6, 6)
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [12, 4, 6]


def test_lazy_decoding_gives_the_cached_images(tmp_path):
    make_folder(tmp_path)
    memory, lazy = (ImageFolderDataModule(str(tmp_path), image_size=8, cache=c) for c in ("memory", "disk"))
    memory.setup()
    lazy.setup()
    assert memory.state_dict() == lazy.state_dict()
    x, y = memory.datasets["test"].tensors
    assert all(
        torch.equal(lazy.datasets["test"][i][0], x[i]) and lazy.datasets["test"][i][1] == y[i] for i in range(len(y))
    )


def test_augmentation_keeps_shape_and_flips():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(3, 1, 1, 1)
    assert torch.allclose(RandomResizedCropFlip(scale=(1, 1), ratio=(1, 1), flip=0.0)(x), x, atol=1e-5)
    assert torch.allclose(RandomResizedCropFlip(scale=(1, 1), ratio=(1, 1), flip=1.0)(x), x.flip(-1), atol=1e-5)
    out = RandomResizedCropFlip(scale=(0.3, 0.5), translate=0.1)(torch.rand(5, 3, 8, 8))
    assert out.shape == (5, 3, 8, 8)


def test_trains_on_a_folder_and_predicts_file_names(tmp_path, make_cfg):
    make_folder(tmp_path / "images", per_class=30)
    overrides = ["data=image_folder", f"data.path={tmp_path / 'images'}", "data.image_size=8", "data.mode=grayscale"]
    model = ["model=cnn", "model.channels=[8,16]", "data.augment.flip=0.0", "data.batch_size=16"]
    cfg = make_cfg(
        *overrides, *model, *NO_LOGGER, "trainer.max_epochs=6", "trainer.limit_train_batches=1.0", "optimizer.lr=1e-2"
    )
    assert train(cfg)["test/acc"] > 0.8
    ckpt = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    out = tmp_path / "predictions.csv"
    predict(
        make_cfg(f"ckpt_path={ckpt}", f"data.path={tmp_path / 'images'}", f"output_file={out}", config_name="predict")
    )
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60 and rows[0]["id"] == "circle/0.png"
    accuracy = np.mean([r["prediction"] == r["id"].split("/")[0] for r in rows])
    assert accuracy > 0.8 and set(rows[0]) == {"id", "prediction", "prob_circle", "prob_square"}

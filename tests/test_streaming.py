"""data.cache=disk|auto: tables streamed in batches into memory-mapped features, image folders decoded lazily."""

import pytest
import torch
from conftest import NO_LOGGER
from test_image_folder import make_folder
from test_table import write_table

from recipe.data import table_file
from recipe.data.image_folder import DecodedImages, ImageFolderDataModule
from recipe.data.mapped import MappedRows
from recipe.data.table import TableDataModule
from recipe.errors import ConfigError
from train import train


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of a few dozen rows, so that a small file streams in many."""
    monkeypatch.setattr(table_file, "CSV_BLOCK", 2048)
    monkeypatch.setattr(table_file, "PARQUET_BATCH", 37)


def rows(dataset) -> list[torch.Tensor]:
    return dataset.__getitems__(list(range(len(dataset))))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_table_gives_the_in_memory_splits_and_statistics(tmp_path, small_batches, suffix):
    path = tmp_path / f"t{suffix}"
    gaps = [None if i % 7 == 3 else float(i % 5) for i in range(300)]
    write_table(path, n=300, gappy=gaps, tag=[None if i % 11 == 4 else "ab"[i % 2] for i in range(300)])
    args = dict(target="label", features=["x", "flag", "colour", "gappy", "tag"], missing="impute", seed=3)
    memory = TableDataModule(str(path), cache="memory", **args)
    disk = TableDataModule(str(path), cache="disk", **args)
    memory.setup()
    disk.setup()
    assert isinstance(disk.datasets["train"], MappedRows) and disk.stream and not memory.stream
    streamed, whole = disk.state_dict()["features"]["columns"], memory.state_dict()["features"]["columns"]
    assert [c["name"] for c in streamed] == [c["name"] for c in whole]
    for s, w in zip(streamed, whole, strict=True):
        assert s == (pytest.approx(w) if s["kind"] == "numeric" else w)  # merged batch moments, the same median
    for split in ("train", "val", "test"):
        (x_disk, y_disk), (x_mem, y_mem) = rows(disk.datasets[split]), rows(memory.datasets[split])
        assert torch.allclose(x_disk, x_mem, atol=1e-5) and torch.equal(y_disk, y_mem)


def test_a_missing_value_is_named_by_its_row_in_the_file_when_streamed(tmp_path, small_batches):
    path = tmp_path / "t.csv"
    write_table(path, n=300, gappy=[None if i == 250 else 1.0 for i in range(300)])
    with pytest.raises(ConfigError, match=r"data.missing='error': column 'gappy' .* \(first in row 251\)"):
        TableDataModule(str(path), target="label", features=["x", "gappy"], cache="disk").setup()


def test_auto_streams_a_table_over_the_limit_and_trains(tmp_path, make_cfg, caplog):
    path = tmp_path / "t.csv"
    write_table(path, n=400)
    data = ["data=csv", f"data.path={path}", "data.target=label", "data.features=[x,colour]"]
    small = TableDataModule(str(path), target="label", features=["x"], cache_limit_mb=path.stat().st_size / 2**20)
    small.setup()
    assert not small.stream  # at the limit: memory
    cfg = make_cfg(*data, "data.cache_limit_mb=0.001", "data.num_workers=1", *NO_LOGGER, "optimizer.lr=1e-2")
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.6
    assert "data.cache=auto: the table files take 0.0262 MB > data.cache_limit_mb=0.001: disk" in caplog.text


def test_auto_decodes_a_folder_over_the_limit_lazily(tmp_path):
    make_folder(tmp_path)  # 24 images: 24 x 3 x 8 x 8 bytes decoded
    over = ImageFolderDataModule(str(tmp_path), image_size=8, cache_limit_mb=24 * 3 * 64 / 2**20 - 1e-6)
    at = ImageFolderDataModule(str(tmp_path), image_size=8, cache_limit_mb=24 * 3 * 64 / 2**20)
    over.setup()
    at.setup()
    assert isinstance(over.datasets["train"], DecodedImages) and not isinstance(at.datasets["train"], DecodedImages)
    assert over.state_dict() == at.state_dict()


@pytest.mark.parametrize(("key", "value"), [("cache", "none"), ("cache_limit_mb", 0)])
def test_bad_cache_settings_name_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"data.{key}={value!r}"):
        TableDataModule("t.csv", target="y", **{key: value})
    with pytest.raises(ConfigError, match=f"data.{key}={value!r}"):
        ImageFolderDataModule(".", **{key: value})


def test_cross_validation_needs_the_table_in_memory(tmp_path):
    path = tmp_path / "t.csv"
    write_table(path)
    with pytest.raises(ConfigError, match=r"data.folds=2: needs data.cache=memory"):
        TableDataModule(str(path), target="label", features=["x"], cache="disk", folds=2).setup()

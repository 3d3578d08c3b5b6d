"""The progress bar does its per-batch work at its refresh rate, and always at the last batch of a loop."""

from __future__ import annotations

from types import SimpleNamespace

from conftest import TINY
from lightning.pytorch.callbacks import RichProgressBar

from recipe.callbacks.progress import ProgressBar
from recipe.cli.config import compose_config
from train import train


def test_the_bar_updates_at_its_rate_and_at_each_loops_last_batch(tmp_path, monkeypatch):
    updates = {"train": [], "val": []}
    real_train, real_val = RichProgressBar.on_train_batch_end, RichProgressBar.on_validation_batch_end

    def on_train(self, trainer, pl_module, outputs, batch, batch_idx):
        updates["train"].append(batch_idx)
        real_train(self, trainer, pl_module, outputs, batch, batch_idx)

    def on_val(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        updates["val"].append(batch_idx)
        real_val(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    monkeypatch.setattr(RichProgressBar, "on_train_batch_end", on_train)
    monkeypatch.setattr(RichProgressBar, "on_validation_batch_end", on_val)

    def run(refresh_rate: float) -> dict[str, list[int]]:
        updates.update(train=[], val=[])
        cfg = compose_config(
            *TINY, "++trainer.limit_train_batches=12",
            "++trainer.limit_val_batches=6", "test=false", f"callbacks.progress_bar.refresh_rate={refresh_rate}",
            f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}",
        )  # fmt: skip
        train(cfg)
        return dict(updates)

    every = run(1e6)
    val_batches = len(every["val"])
    assert every == {"train": list(range(12)), "val": list(range(val_batches))}
    # the first batch (nothing drawn yet) and each loop's last; validation follows the last training update at once
    assert run(0.001) == {"train": [0, 11], "val": [val_batches - 1]}


def test_the_first_batch_updates_on_a_machine_booted_moments_ago(monkeypatch):
    # time.monotonic() counts from boot: 5 s after it, a bar that had never updated held its first batch back
    monkeypatch.setattr("recipe.callbacks.progress.time", SimpleNamespace(monotonic=lambda: 5.0))
    bar = ProgressBar(refresh_rate=0.001)
    assert [bar._due(batch, 12) for batch in range(12)] == [True] + [False] * 10 + [True]


def test_a_disabled_bar_reads_no_batch_count():
    # DDP disables the bar on every rank but 0; there Lightning never sets the dataloader index the count needs
    bar = ProgressBar()
    bar.disable()
    bar._trainer = SimpleNamespace(sanity_checking=False, num_val_batches=[2], num_training_batches=4)
    bar.on_validation_batch_end(bar._trainer, None, None, None, 0)
    bar.on_train_batch_end(bar._trainer, None, None, None, 0)

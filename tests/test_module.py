"""The LightningModule's epoch metrics equal the true epoch means, every epoch, though logged once per epoch."""

import lightning as L
import pytest
import torch
from torch import nn

from recipe.build import build


class CheckEpochMetrics(L.Callback):
    """Recomputes each epoch's val loss and accuracy by hand and the train loss from the step outputs."""

    def __init__(self) -> None:
        self.train_losses: list[tuple[float, int]] = []
        self.pairs: list[tuple[str, float, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.train_losses.append((float(outputs["loss"]), len(batch[1])))

    def on_validation_end(self, trainer, pl_module) -> None:
        criterion = nn.CrossEntropyLoss(label_smoothing=pl_module.hparams.label_smoothing, reduction="sum")
        x, y = (t.to(pl_module.device) for t in trainer.datamodule.datasets["val"].tensors)
        with torch.no_grad():
            logits = pl_module.net.eval()(x)
        metrics = trainer.callback_metrics
        self.pairs.append(("val/loss", float(metrics["val/loss"]), float(criterion(logits, y)) / len(y)))
        self.pairs.append(("val/acc", float(metrics["val/acc"]), float((logits.argmax(1) == y).float().mean())))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.train_losses.clear()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        mean = sum(loss * n for loss, n in self.train_losses) / sum(n for _, n in self.train_losses)
        self.pairs.append(("train/loss", float(trainer.callback_metrics["train/loss"]), mean))


def test_epoch_metrics_are_exact_means_every_epoch(make_cfg):
    datamodule, module = build(make_cfg())
    check = CheckEpochMetrics()
    trainer = L.Trainer(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[check],
    )
    trainer.fit(module, datamodule=datamodule)
    assert len(check.pairs) == 9
    for name, logged, expected in check.pairs:
        assert logged == pytest.approx(expected, rel=1e-5, abs=1e-6), name
    losses = [v for name, v, _ in check.pairs if name == "val/loss"]
    assert len({round(v, 6) for v in losses}) == 3  # it changed every epoch
    # the lowest val loss so far, beside the best accuracy: what hparams_search=auto scores a trial by
    assert float(trainer.callback_metrics["val/loss_best"]) == pytest.approx(min(losses), rel=1e-5)

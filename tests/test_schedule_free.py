"""Schedule-free optimizers in Lightning's loop: validation, test and checkpoints see the averaged weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from conftest import NO_LOGGER, use_noise_data

from recipe.callbacks import ScheduleFreeModes, schedule_free_callbacks
from recipe.errors import ConfigError
from recipe.optim import OptimizerSpec
from train import train

BETA1 = 0.9


def cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A copy in CPU memory, comparable with a checkpoint's tensors loaded there, whatever device trained."""
    return tensor.detach().cpu().clone()


class AverageProbe(L.Callback):
    """Before validation, works out the averaged weights x = (y - (1 - beta1) z) / beta1 from the training weights y
    and the optimizer's z; during validation, records the weights the model has (all in CPU memory)."""

    def __init__(self) -> None:
        self.expected: list[dict[str, torch.Tensor]] = []
        self.train_weights: list[dict[str, torch.Tensor]] = []
        self.seen: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        optimizer = trainer.optimizers[0]
        y = {n: cpu_copy(p) for n, p in pl_module.named_parameters()}
        z = {n: cpu_copy(optimizer.state[p]["z"]) for n, p in pl_module.named_parameters()}
        self.train_weights.append(y)
        self.expected.append({n: (y[n] - (1 - BETA1) * z[n]) / BETA1 for n in y})

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            self.seen.append({n: cpu_copy(p) for n, p in pl_module.named_parameters()})


def run_cfg(make_cfg, *overrides: str):
    cfg = make_cfg(
        "optimizer=schedulefree_adamw",
        "scheduler=constant",
        "optimizer.warmup_steps=0",
        "model.hidden_sizes=[32]",
        "trainer.limit_train_batches=null",
        "trainer.limit_val_batches=null",
        *NO_LOGGER,
        *overrides,
    )
    return use_noise_data(cfg, n_train=128, n_eval=64, batch_size=32)


def test_validation_sees_the_averaged_weights_not_the_training_ones(make_cfg):
    probe = AverageProbe()
    train(run_cfg(make_cfg, "test=false"), extra_callbacks=[probe])
    assert len(probe.seen) == 2  # one validation per epoch
    for epoch, seen in enumerate(probe.seen):
        last = 4 * (epoch + 1) - 1  # the last training batch before this validation
        for name, weight in seen.items():
            torch.testing.assert_close(weight, probe.expected[last][name], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(seen["net.layers.1.weight"], probe.train_weights[last]["net.layers.1.weight"])


class BatchNormProbe(L.Callback):
    """Records the first BatchNorm's running mean during validation, and the mean of its input over all training
    samples computed with the weights the model has then."""

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx:
            return
        x = torch.cat([xb for xb, _ in trainer.datamodule.train_dataloader()]).float()
        self.expected = (x.flatten(1) @ cpu_copy(pl_module.net.layers[1].weight).T).mean(0)
        self.running_mean = cpu_copy(pl_module.net.layers[2].running_mean)


def test_batch_norm_statistics_are_recomputed_for_the_averaged_weights(make_cfg):
    probe = BatchNormProbe()
    train(run_cfg(make_cfg, "test=false", "trainer.max_epochs=1"), extra_callbacks=[probe])
    torch.testing.assert_close(probe.running_mean, probe.expected, rtol=1e-4, atol=1e-5)


def test_checkpoints_hold_the_averaged_weights_and_a_resume_is_exact(make_cfg, tmp_path):
    straight = tmp_path / "straight"
    cfg = run_cfg(make_cfg, "test=false", f"paths.output_dir={straight}")
    probe = AverageProbe()
    train(cfg, extra_callbacks=[probe])
    saved = torch.load(straight / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    for name, weight in probe.seen[-1].items():
        torch.testing.assert_close(saved["state_dict"][name], weight)
    assert saved["optimizer_states"][0]["param_groups"][0]["train_mode"] is False

    first = tmp_path / "first"
    train(run_cfg(make_cfg, "test=false", "trainer.max_epochs=1", f"paths.output_dir={first}"))
    resumed = tmp_path / "resumed"
    cfg = run_cfg(make_cfg, "test=false", f"paths.output_dir={resumed}", f"ckpt_path={first}/checkpoints/last.ckpt")
    train(cfg)
    again = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    for name, weight in saved["state_dict"].items():
        torch.testing.assert_close(again["state_dict"][name], weight, rtol=0, atol=1e-6)


def test_a_decaying_scheduler_is_one_line_naming_it(make_cfg):
    cfg = run_cfg(make_cfg, "scheduler=cosine", "scheduler.min_lr=0")
    with pytest.raises(ConfigError, match="scheduler='cosine': a schedule-free optimizer averages"):
        train(cfg)


def test_the_callback_comes_with_schedule_free_optimizers_only():
    assert [type(c) for c in schedule_free_callbacks(OptimizerSpec("schedulefree_sgd", lr=1.0))] == [ScheduleFreeModes]
    assert schedule_free_callbacks(OptimizerSpec("adamw", lr=1e-3)) == []
    assert schedule_free_callbacks(None) == []


class SaveMidEpoch(AverageProbe):
    """Saves a checkpoint after the second training batch, and records the weights before and after the save."""

    def __init__(self, path) -> None:
        super().__init__()
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == 2:
            trainer.save_checkpoint(self.path)
            self.after_save = {n: cpu_copy(p) for n, p in pl_module.named_parameters()}


def test_a_checkpoint_saved_while_training_holds_the_averaged_weights(make_cfg, tmp_path):
    probe = SaveMidEpoch(tmp_path / "mid.ckpt")
    train(run_cfg(make_cfg, "test=false", "trainer.max_epochs=1"), extra_callbacks=[probe])
    saved = torch.load(tmp_path / "mid.ckpt", map_location="cpu", weights_only=True)
    assert saved["optimizer_states"][0]["param_groups"][0]["train_mode"] is False
    for name, weight in probe.expected[1].items():
        torch.testing.assert_close(saved["state_dict"][name], weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(probe.after_save[name], probe.train_weights[1][name])  # training goes on at y

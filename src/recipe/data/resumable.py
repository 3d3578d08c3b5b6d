"""A training DataLoader that a run stopped in the middle of an epoch resumes from exactly where it stopped.

torch's ``DataLoader`` keeps no position, so a mid-epoch resume draws a new order for the rest of the epoch.
``DataPosition`` saves the seed of the epoch's permutation and the batches the run had trained on (Lightning's own
count: a loader is read ahead by Lightning's prefetch and by workers, so its own count runs ahead of training), and
the resumed run's loader continues that permutation after those batches. Written here because torch has no
resumable sampler.

The order is ``RandomSampler``'s: a permutation seeded from torch's global RNG when an epoch starts. Creating an
iterator draws nothing else from that RNG (the worker seed comes from the loader's own generator), so a resumed
epoch leaves the global RNG, restored by ``callbacks.rng_state``, where the uninterrupted run had it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset, Sampler


class ResumableRandomSampler(Sampler[int]):
    """A random permutation per epoch, as ``RandomSampler``; ``resume(seed, start)`` makes the next epoch that
    seed's permutation from index ``start`` on, drawing nothing from the global RNG."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seed: int | None = None  # of the epoch under way
        self._resume: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.size

    def resume(self, seed: int, start: int) -> None:
        self._resume = (seed, start)

    def __iter__(self) -> Iterator[int]:
        if self._resume is not None:
            (self.seed, start), self._resume = self._resume, None
        else:
            self.seed, start = int(torch.empty((), dtype=torch.int64).random_().item()), 0
        generator = torch.Generator().manual_seed(self.seed)
        yield from torch.randperm(self.size, generator=generator)[start:].tolist()


class DataPosition(Callback):
    """Saves the training order's position in every checkpoint (the epoch's seed, the batches trained on) and hands
    it to the training loader that ``train_loader`` builds on resume.

    Lightning restores a loader's own ``state_dict`` only when it builds the loader after restoring its loops;
    a schedule sized with ``estimated_stepping_batches`` makes it build the loader earlier, so the state would never
    arrive. Callbacks are restored before any loader is built.
    """

    def __init__(self) -> None:
        self.trainer: L.Trainer | None = None
        self.pending: dict[str, Any] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        sampler = getattr(getattr(self.trainer, "train_dataloader", None), "sampler", None)
        if not isinstance(sampler, ResumableRandomSampler) or sampler.seed is None:
            return {}
        trained = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"seed": sampler.seed, "batches": trained if trained < self.trainer.num_training_batches else 0}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pending = dict(state_dict) if state_dict.get("batches") else None  # at an epoch's end: a new order

    def resume(self, sampler: ResumableRandomSampler, batch_size: int) -> None:
        """Start ``sampler``'s next epoch where the checkpoint's stopped (once)."""
        if self.pending is not None:
            sampler.resume(self.pending["seed"], self.pending["batches"] * batch_size)
            self.pending = None


def train_loader(dataset: Dataset, trainer: L.Trainer | None, seed: int, **kwargs: Any) -> DataLoader:
    """The training loader: shuffled by a ``ResumableRandomSampler`` that ``DataPosition`` (when among the
    trainer's callbacks) starts where a resumed checkpoint stopped; the worker seeds come from a generator seeded
    with ``seed``. Under DDP, torch's shuffling, which Lightning gives a ``DistributedSampler`` (its order is fixed
    by the epoch, its position within the epoch is not kept)."""
    if trainer is not None and trainer.world_size > 1:
        return DataLoader(dataset, shuffle=True, **kwargs)
    sampler = ResumableRandomSampler(len(dataset))
    for callback in trainer.callbacks if trainer is not None else ():
        if isinstance(callback, DataPosition):
            callback.resume(sampler, kwargs["batch_size"])
    return DataLoader(dataset, sampler=sampler, generator=torch.Generator().manual_seed(seed), **kwargs)

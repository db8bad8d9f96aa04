"""The training loop both trainers share: seeding, loaders, mixed precision, progress, eval and checkpoints."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..device import autocast as device_autocast
from .dataset import WindowDataset, load_clips, split_clips

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LoopOptions:
    """Settings every trainer shares (the reference hparams' names where they exist)."""

    data_dir: Path
    checkpoint_dir: Path
    img_size: int = 96
    batch_size: int = 16
    steps: int = 100_000  # train until the global step reaches this
    learning_rate: float = 1e-4
    eval_interval: int = 3000
    eval_steps: int = 50  # batches per evaluation
    checkpoint_interval: int = 3000
    val_fraction: float = 0.05
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True  # CUDA only
    num_workers: int = 0
    resume: bool = False  # continue from the latest checkpoint in checkpoint_dir
    checkpoint: Path | None = None  # or from this file (weights, plus optimizer/step when it has them)
    reset_optimizer: bool = False
    progress: bool = True


@dataclass
class TrainResult:
    """Per-step training losses, evaluation losses by step, and the last checkpoint written."""

    losses: list[dict[str, float]] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    checkpoint: Path | None = None


class Trainer(Protocol):
    step: int
    epoch: int
    epoch_batch: int  # batches of the current epoch done (restored on resume)

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]: ...

    def evaluate(self, batches: Iterator[tuple[torch.Tensor, ...]]) -> dict[str, float]: ...

    def save(self) -> Path: ...


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run repeats."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train_and_eval_sets(options: LoopOptions, dataset_type: type[WindowDataset]) -> tuple[WindowDataset, WindowDataset]:
    """The data folder's clips split into a training and an evaluation dataset, each with its own seed."""
    train_clips, eval_clips = split_clips(load_clips(options.data_dir), options.val_fraction)
    return dataset_type(train_clips, options.img_size, options.seed), dataset_type(eval_clips, options.img_size, options.seed + 1)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when ``enabled``; a no-op elsewhere (CPU/MPS train in float32)."""
    return device_autocast(device, torch.float16 if enabled and device.type == "cuda" else None)


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", enabled=enabled and device.type == "cuda")


class EpochBatches(Sampler):
    """Batches of ``(epoch, index)`` keys: a seeded permutation per epoch, so a run resumed at
    ``(epoch, batch)`` sees exactly the batches an uninterrupted run would have."""

    def __init__(self, size: int, batch_size: int, seed: int, shuffle: bool) -> None:
        self.size = size
        self.batch_size = max(1, min(batch_size, size))
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.skip = 0  # batches of this epoch already trained on

    def __len__(self) -> int:
        return self.size // self.batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)).tolist()
        else:
            order = list(range(self.size))
        for batch in range(self.skip, len(self)):
            yield [(self.epoch, index) for index in order[batch * self.batch_size : (batch + 1) * self.batch_size]]


def make_loader(dataset: WindowDataset, options: LoopOptions, shuffle: bool) -> DataLoader:
    """A loader whose batch sampler is an ``EpochBatches`` (full batches only)."""
    sampler = EpochBatches(len(dataset), options.batch_size, options.seed, shuffle)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=options.num_workers, pin_memory=torch.cuda.is_available())


def endless(loader: DataLoader, epoch: int = 0, batch: int = 0) -> Iterator[tuple[int, int, tuple[torch.Tensor, ...]]]:
    """``(epoch, batches done in it, batch)`` from position ``(epoch, batch)`` on, epoch after epoch."""
    sampler: EpochBatches = loader.batch_sampler
    while True:
        sampler.epoch, sampler.skip = epoch, batch
        for data in loader:
            batch += 1
            yield epoch, batch, data
        epoch, batch = epoch + 1, 0


def run_loop(trainer: Trainer, train_loader: DataLoader, eval_loader: DataLoader, options: LoopOptions, name: str) -> TrainResult:
    """Train until ``options.steps``, evaluating and checkpointing at their intervals and at the end."""
    from tqdm import tqdm

    result = TrainResult()
    if trainer.step >= options.steps:
        logger.info("%s: already at step %d of %d; nothing to train", name, trainer.step, options.steps)
        return result
    batches = endless(train_loader, trainer.epoch, trainer.epoch_batch)
    with tqdm(total=options.steps, initial=trainer.step, unit="step", desc=name, disable=not options.progress) as bar:
        while trainer.step < options.steps:
            trainer.epoch, trainer.epoch_batch, batch = next(batches)
            losses = trainer.train_step(batch)
            result.losses.append(losses)
            bar.update(1)
            bar.set_postfix({key: f"{value:.4f}" for key, value in losses.items()}, refresh=False)
            last = trainer.step >= options.steps
            if trainer.step % options.eval_interval == 0 or last:
                metrics = trainer.evaluate(_take(endless(eval_loader), options.eval_steps))
                result.evaluations.append((trainer.step, metrics))
                logger.info("%s step %d eval: %s", name, trainer.step, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if trainer.step % options.checkpoint_interval == 0 or last:
                result.checkpoint = trainer.save()
    return result


def _take(batches: Iterator[tuple[int, int, tuple[torch.Tensor, ...]]], count: int) -> Iterator[tuple[torch.Tensor, ...]]:
    for _ in range(max(1, count)):
        yield next(batches)[2]


def mean_losses(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average each named loss over ``rows``."""
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} if rows else {}

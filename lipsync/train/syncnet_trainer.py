"""Train the expert colour SyncNet (the reference ``color_syncnet_train.py``): BCE on the cosine similarity
of audio and lower-face embeddings, in-sync pairs against shifted ones. The result is the
``lipsync_expert.pth`` the Wav2Lip trainer (and the sync scoring) loads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..device import pick_device
from ..models.syncnet import SyncNetColor
from .checkpoints import GENERATOR_PREFIX, checkpoint_path, latest_checkpoint, restore, save_training_checkpoint
from .dataset import SyncNetDataset
from .loop import LoopOptions, TrainResult, autocast, grad_scaler, make_loader, mean_losses, run_loop, seed_everything, train_and_eval_sets
from .losses import sync_bce

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SyncNetOptions(LoopOptions):
    """The reference's SyncNet defaults: batch 64, lr 1e-4, eval and checkpoint every 10000 steps."""

    batch_size: int = 64
    eval_interval: int = 10_000
    checkpoint_interval: int = 10_000


class SyncNetTrainer:
    """One SyncNet, its Adam optimizer and step counter; ``train_step`` on ``(faces, mel, label)`` batches."""

    def __init__(self, options: SyncNetOptions, device: torch.device) -> None:
        self.options = options
        self.device = device
        self.model = SyncNetColor(options.img_size).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=options.learning_rate)
        self.scaler = grad_scaler(device, options.mixed_precision)
        self.step = 0
        self.epoch = 0
        self.epoch_batch = 0

    def resume_from(self, path: Path) -> None:
        raw = restore(path, self.model, self.optimizer, self.options.reset_optimizer)
        self.step = int(raw.get("global_step", 0) or 0)
        self.epoch = int(raw.get("global_epoch", 0) or 0)
        self.epoch_batch = int(raw.get("epoch_batch", 0) or 0)

    def _loss(self, faces: torch.Tensor, mel: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        faces, mel, label = (tensor.to(self.device, non_blocking=True) for tensor in (faces, mel, label))
        with autocast(self.device, self.options.mixed_precision):
            audio_embedding, face_embedding = self.model(mel, faces)
        return sync_bce(audio_embedding, face_embedding, label)

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(*batch)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return {"sync": loss.item()}

    @torch.no_grad()
    def evaluate(self, batches: Iterator[tuple[torch.Tensor, ...]]) -> dict[str, float]:
        self.model.eval()
        return mean_losses([{"sync": self._loss(*batch).item()} for batch in batches])

    def save(self) -> Path:
        path = checkpoint_path(self.options.checkpoint_dir, GENERATOR_PREFIX, self.step)
        return save_training_checkpoint(path, self.model, self.optimizer, self.step, self.epoch, {"epoch_batch": self.epoch_batch})


def train_syncnet(options: SyncNetOptions) -> TrainResult:
    """Train (or resume training) an expert SyncNet on a preprocessed folder; see ``SyncNetOptions``."""
    seed_everything(options.seed)
    train_set, eval_set = train_and_eval_sets(options, SyncNetDataset)
    device = pick_device(options.device)
    trainer = SyncNetTrainer(options, device)
    start = latest_checkpoint(options.checkpoint_dir) if options.resume else options.checkpoint
    if start is not None:
        trainer.resume_from(start)
    logger.info("SyncNet %d: %d training windows, %d eval windows, on %s", options.img_size, len(train_set), len(eval_set), device)
    return run_loop(trainer, make_loader(train_set, options, True), make_loader(eval_set, options, False), options, "syncnet")

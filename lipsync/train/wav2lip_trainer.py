"""Train the Wav2Lip generator (the reference ``wav2lip_train.py`` / ``hq_wav2lip_train.py``).

Loss: L1 reconstruction + the frozen expert SyncNet's loss on the generated frames, whose weight is
0 until the evaluation sync loss falls below 0.75, then 0.03 with the discriminator (0.01 without),
as the reference does. With ``gan`` a visual-quality discriminator adds its realism loss (weight 0.07)
and trains on real vs generated lower halves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..device import pick_device
from ..errors import LipSyncError
from ..models.registry import load_model_file
from ..models.wav2lip import Wav2Lip
from .checkpoints import DISCRIMINATOR_PREFIX, GENERATOR_PREFIX, checkpoint_path, latest_checkpoint, restore, save_training_checkpoint
from .dataset import Wav2LipDataset
from .discriminator import QualityDiscriminator
from .loop import LoopOptions, TrainResult, autocast, grad_scaler, make_loader, mean_losses, run_loop, seed_everything, train_and_eval_sets
from .losses import expert_sync_loss

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Wav2LipOptions(LoopOptions):
    """Reference defaults: batch 16, lr 1e-4 (Adam, betas 0.5/0.999), eval/checkpoint every 3000 steps."""

    syncnet: Path | None = None  # the expert (lipsync_expert.pth or one trained here), same size as the model
    gan: bool = False  # add the visual-quality discriminator (the HQ / "wav2lip_gan" recipe)
    syncnet_weight: float | None = None  # starting weight of the sync loss; None: the checkpoint's (resuming), else 0
    syncnet_weight_target: float | None = None  # raised to this (0.03 with gan, 0.01 without) ...
    sync_threshold: float = 0.75  # ... once the eval sync loss is below this
    disc_weight: float = 0.07
    disc_learning_rate: float = 1e-4
    disc_checkpoint: Path | None = None


class Wav2LipTrainer:
    """Generator (+ optional discriminator), their optimizers, the frozen expert and the current sync weight."""

    def __init__(self, options: Wav2LipOptions, expert: torch.nn.Module, device: torch.device) -> None:
        self.options = options
        self.device = device
        self.model = Wav2Lip(options.img_size).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=options.learning_rate, betas=(0.5, 0.999))
        self.scaler = grad_scaler(device, options.mixed_precision)
        self.expert = expert.to(device).eval().requires_grad_(False)
        self.disc: QualityDiscriminator | None = None
        if options.gan:
            self.disc = QualityDiscriminator(options.img_size).to(device)
            self.disc_optimizer = torch.optim.Adam(self.disc.parameters(), lr=options.disc_learning_rate, betas=(0.5, 0.999))
            self.disc_scaler = grad_scaler(device, options.mixed_precision)
        self.syncnet_weight = options.syncnet_weight or 0.0
        target = options.syncnet_weight_target
        self.syncnet_weight_target = target if target is not None else (0.03 if options.gan else 0.01)
        self.step = 0
        self.epoch = 0
        self.epoch_batch = 0

    @property
    def disc_weight(self) -> float:
        return self.options.disc_weight if self.disc is not None else 0.0

    def resume_from(self, path: Path, disc_path: Path | None) -> None:
        raw = restore(path, self.model, self.optimizer, self.options.reset_optimizer)
        self.step = int(raw.get("global_step", 0) or 0)
        self.epoch = int(raw.get("global_epoch", 0) or 0)
        self.epoch_batch = int(raw.get("epoch_batch", 0) or 0)
        if self.options.syncnet_weight is None:  # an explicit weight wins over the one the checkpoint reached
            self.syncnet_weight = float(raw.get("syncnet_wt", self.syncnet_weight))
        if self.disc is not None and disc_path is not None:
            restore(disc_path, self.disc, self.disc_optimizer, self.options.reset_optimizer)

    def _generate(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        inputs, frame_mels, window_mel, target = (tensor.to(self.device, non_blocking=True) for tensor in batch)
        with autocast(self.device, self.options.mixed_precision):
            generated = self.model(frame_mels, inputs)
        return generated, window_mel, target

    def _generator_losses(self, generated: torch.Tensor, window_mel: torch.Tensor, target: torch.Tensor, with_sync: bool) -> dict:
        losses = {"l1": F.l1_loss(generated.float(), target)}
        if with_sync:
            with autocast(self.device, self.options.mixed_precision):
                losses["sync"] = expert_sync_loss(self.expert, window_mel, generated)
        if self.disc is not None:
            with autocast(self.device, self.options.mixed_precision):
                losses["realism"] = self.disc.realism_loss(generated)
        sync_weight = self.syncnet_weight if with_sync else 0.0
        total = (1.0 - sync_weight - self.disc_weight) * losses["l1"]
        if with_sync:
            total = total + sync_weight * losses["sync"]
        if self.disc is not None:
            total = total + self.disc_weight * losses["realism"]
        losses["total"] = total
        return losses

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        if self.disc is not None:
            self.disc.eval().requires_grad_(False)  # the generator step only flows through it
        generated, window_mel, target = self._generate(batch)
        losses = self._generator_losses(generated, window_mel, target, with_sync=self.syncnet_weight > 0)
        self.scaler.scale(losses["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.disc is not None:
            losses.update(self._discriminator_step(generated.detach(), target))
        self.step += 1
        return {key: float(value.detach()) for key, value in losses.items()}

    def _discriminator_step(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        self.disc.train().requires_grad_(True)
        self.disc_optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.options.mixed_precision):
            real_logits, fake_logits = self.disc(real).float(), self.disc(fake).float()
        real_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.disc_scaler.scale(real_loss + fake_loss).backward()
        self.disc_scaler.step(self.disc_optimizer)
        self.disc_scaler.update()
        return {"disc_real": real_loss.detach(), "disc_fake": fake_loss.detach()}

    @torch.no_grad()
    def evaluate(self, batches: Iterator[tuple[torch.Tensor, ...]]) -> dict[str, float]:
        """Mean losses over ``batches`` (sync always measured); raises the sync weight as the reference does."""
        self.model.eval()
        if self.disc is not None:
            self.disc.eval()
        rows = []
        for batch in batches:
            generated, window_mel, target = self._generate(batch)
            rows.append({key: float(value) for key, value in self._generator_losses(generated, window_mel, target, True).items()})
        metrics = mean_losses(rows)
        if self.syncnet_weight < self.syncnet_weight_target and metrics["sync"] < self.options.sync_threshold:
            logger.info("eval sync loss %.4f < %.2f: sync loss weight %.3f -> %.3f", metrics["sync"], self.options.sync_threshold,
                        self.syncnet_weight, self.syncnet_weight_target)  # fmt: skip
            self.syncnet_weight = self.syncnet_weight_target
        return metrics

    def save(self) -> Path:
        directory = self.options.checkpoint_dir
        extra = {"syncnet_wt": self.syncnet_weight, "epoch_batch": self.epoch_batch}
        path = save_training_checkpoint(checkpoint_path(directory, GENERATOR_PREFIX, self.step), self.model, self.optimizer,
                                        self.step, self.epoch, extra)  # fmt: skip
        if self.disc is not None:
            disc_path = checkpoint_path(directory, DISCRIMINATOR_PREFIX, self.step)
            save_training_checkpoint(disc_path, self.disc, self.disc_optimizer, self.step, self.epoch, {"epoch_batch": self.epoch_batch})
        return path


def load_expert(path: Path | None, img_size: int) -> torch.nn.Module:
    """The frozen expert SyncNet; its size must be the generator's."""
    if path is None:
        raise LipSyncError("Wav2Lip training needs the expert SyncNet: pass --syncnet lipsync_expert.pth (or train one first).")
    descriptor = load_model_file(path, expected_purpose="sync_expert")
    if descriptor.input_size != img_size:
        raise LipSyncError(
            f"The expert SyncNet '{path}' is for {descriptor.input_size}x{descriptor.input_size} faces but the model size is "
            f"{img_size}. Train a SyncNet with --size {img_size} first."
        )
    return descriptor.model


def train_wav2lip(options: Wav2LipOptions) -> TrainResult:
    """Train (or resume/fine-tune) a Wav2Lip generator on a preprocessed folder; see ``Wav2LipOptions``."""
    seed_everything(options.seed)
    train_set, eval_set = train_and_eval_sets(options, Wav2LipDataset)
    device = pick_device(options.device)
    trainer = Wav2LipTrainer(options, load_expert(options.syncnet, options.img_size), device)
    start, disc_start = options.checkpoint, options.disc_checkpoint
    if options.resume:
        start = latest_checkpoint(options.checkpoint_dir, GENERATOR_PREFIX)
        disc_start = latest_checkpoint(options.checkpoint_dir, DISCRIMINATOR_PREFIX)
    if start is not None:
        trainer.resume_from(start, disc_start)
    logger.info("Wav2Lip %d%s: %d training windows, %d eval windows, on %s", options.img_size, " + GAN" if options.gan else "",
                len(train_set), len(eval_set), device)  # fmt: skip
    return run_loop(trainer, make_loader(train_set, options, True), make_loader(eval_set, options, False), options, "wav2lip")

"""Training checkpoints: the published layout (so the inference loaders read them) plus what resuming needs.

A file holds ``{"state_dict": {"module.<key>": tensor}, "optimizer": ..., "global_step": int,
"global_epoch": int, "image_size": int, ...}``, as the reference trainers save (with the model size added).
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import CorruptWeightsError, LipSyncError, WeightsNotFoundError, load_failure_reason
from ..models.checkpoint import save_checkpoint, unwrap_state_dict

logger = logging.getLogger(__name__)

GENERATOR_PREFIX = "checkpoint_step"
DISCRIMINATOR_PREFIX = "disc_checkpoint_step"


def checkpoint_path(directory: Path, prefix: str, step: int) -> Path:
    """``<prefix>{step:09d}.pth`` (the reference's names)."""
    return directory / f"{prefix}{step:09d}.pth"


def latest_checkpoint(directory: Path, prefix: str = GENERATOR_PREFIX) -> Path | None:
    """The checkpoint with the highest step in ``directory``, or ``None``."""
    found = sorted(path for path in directory.glob(f"{prefix}*.pth") if path.stem[len(prefix) :].isdigit())
    return found[-1] if found else None


def save_training_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None, step: int, epoch: int, extra: Mapping[str, object] | None = None
) -> Path:
    """Write atomically (a partial file never has the final name), so a stopped run leaves no broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, object] = {
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "global_step": step,
        "global_epoch": epoch,
        "image_size": int(getattr(model, "img_size", 96)),
    }
    payload.update(extra or {})
    partial = path.with_name(f".{path.stem}.partial.pth")
    save_checkpoint(model.state_dict(), partial, extra=payload)
    os.replace(partial, path)
    logger.info("saved %s", path)
    return path


def read_training_checkpoint(path: Path) -> dict:
    """The whole checkpoint dict (tensors on the CPU), read without unpickling arbitrary objects."""
    if not path.is_file():
        raise WeightsNotFoundError(str(path), [path.parent])
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CorruptWeightsError(path, load_failure_reason(error)) from error
    return raw if isinstance(raw, dict) else {"state_dict": raw}


def restore(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None, reset_optimizer: bool = False) -> dict:
    """Load weights (and optimizer state unless ``reset_optimizer``, keeping the optimizer's learning rate) from ``path``;
    returns the checkpoint dict."""
    raw = read_training_checkpoint(path)
    state = unwrap_state_dict(raw, path)
    own = model.state_dict()
    state.update({key: own[key] for key in own if key.endswith("num_batches_tracked") and key not in state})
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        size = raw.get("image_size", "unknown")
        raise LipSyncError(
            f"'{path}' does not fit a {type(model).__name__} of size {getattr(model, 'img_size', '?')} "
            f"(the file's size: {size}): {str(error).splitlines()[0]}. Pass the matching --size or another file."
        ) from error
    if optimizer is not None and not reset_optimizer and isinstance(raw.get("optimizer"), Mapping):
        learning_rates = [group["lr"] for group in optimizer.param_groups]
        try:
            optimizer.load_state_dict(raw["optimizer"])
        except (ValueError, KeyError) as error:
            logger.warning("optimizer state in %s does not fit (%s); starting a fresh optimizer", path, error)
        for group, learning_rate in zip(optimizer.param_groups, learning_rates, strict=True):
            group["lr"] = learning_rate  # this run's --lr, not the one saved with the moments
    logger.info("restored %s (step %s)", path, raw.get("global_step", 0))
    return raw

"""Errors a user can act on; each message says what went wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class LipSyncError(Exception):
    """Base class for errors caused by input or set-up rather than by a bug."""


class WeightsNotFoundError(LipSyncError):
    """A model weight file is not where it was looked for."""

    def __init__(self, filename: str, folder: str) -> None:
        self.filename = filename
        self.folder = folder
        super().__init__(f"Model weights '{filename}' not found. Put the file in '{folder}' (weights are never downloaded automatically).")


class CorruptWeightsError(LipSyncError):
    """A weight file exists but cannot be read as tensors."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(
            f"Cannot read model weights from '{path}': {reason}. The file may be truncated or not a "
            "checkpoint; download it again (only tensor checkpoints and .safetensors are accepted)."
        )


class UnsupportedModelError(LipSyncError):
    """A state dict matches none of the known architectures."""


class MediaError(LipSyncError):
    """An input video, image or audio file cannot be read, or holds nothing usable."""


class NoFaceError(LipSyncError):
    """No face was found where one was required."""

"""Errors a user can act on; each message says what went wrong and what to do."""

from __future__ import annotations

import os
from pathlib import Path


class LipSyncError(Exception):
    """Base class for errors caused by input or set-up rather than by a bug."""


class WeightsNotFoundError(LipSyncError):
    """A model weight file is not where it was looked for.

    ``download_dir`` is the folder the download command should put it in (default: ``folder``).
    """

    def __init__(self, filename: str, folder: str, download_dir: str | os.PathLike | None = None) -> None:
        from .weights.registry import download_hint

        self.filename = filename
        self.folder = folder
        hint = download_hint(filename, download_dir if download_dir is not None else folder)
        super().__init__(
            f"Model weights '{filename}' not found. Put the file in '{folder}' (weights are never downloaded automatically). {hint}"
        )


class CorruptWeightsError(LipSyncError):
    """A weight file exists but cannot be read as tensors."""

    def __init__(self, path: Path, reason: str) -> None:
        from .weights.registry import download_hint, find_entry

        self.path = path
        self.reason = reason
        again = f" {download_hint(path.name, path.parent)} (it is verified before it replaces the file)." if find_entry(path.name) else ""
        super().__init__(
            f"Cannot read model weights from '{path}': {reason}. The file may be truncated or not a "
            f"checkpoint; download it again (only tensor checkpoints and .safetensors are accepted).{again}"
        )


class UnsupportedModelError(LipSyncError):
    """A state dict matches none of the known architectures."""


class MediaError(LipSyncError):
    """An input video, image or audio file cannot be read, or holds nothing usable."""


class NoFaceError(LipSyncError):
    """No face was found where one was required."""

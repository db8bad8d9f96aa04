"""Errors a user can act on; each message says what went wrong and what to do.

Every one subclasses ``LipSyncError``: the command line exits 2 on those (one line, no traceback),
ComfyUI shows the message; anything else is a bug and keeps its traceback. This module imports
nothing from the rest of the pack: the code that raises builds any download hint and passes it in.

The classes carry the stable module name ``lipsync.errors``: ComfyUI shows an error's type as
``<module>.<class>``, and the pack's real module path there is ``/abs/path/custom_nodes/<pack>.lipsync.errors``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

STABLE_MODULE = "lipsync.errors"


class LipSyncError(Exception):
    """Base class for errors caused by input or set-up rather than by a bug."""

    __module__ = STABLE_MODULE


class OptionError(LipSyncError, ValueError):
    """An option or argument is out of its range; also a ``ValueError`` for callers that catch those."""

    __module__ = STABLE_MODULE


class OutputError(LipSyncError):
    """The output cannot be written there (a folder, read-only, the disk full, or an input's own path)."""

    __module__ = STABLE_MODULE


class Cancelled(LipSyncError):
    """The run was cancelled (Ctrl+C, SIGTERM, SIGHUP); nothing was written."""

    __module__ = STABLE_MODULE


def _quoted_folders(folders: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    return " or ".join(f"'{os.fspath(folder)}'" for folder in folders)


class WeightsNotFoundError(LipSyncError):
    """A model weight file is not where it was looked for.

    ``folders`` is where it was looked for (one path, or several listed separately); ``hint`` is the
    sentence with the command that downloads it (built by the caller, from ``lipsync.weights.registry``).
    """

    __module__ = STABLE_MODULE

    def __init__(self, filename: str, folders: str | os.PathLike | Sequence[str | os.PathLike], hint: str = "") -> None:
        self.filename = filename
        self.folders = [os.fspath(folders)] if isinstance(folders, (str, os.PathLike)) else [os.fspath(folder) for folder in folders]
        self.folder = self.folders[0]
        tail = f" {hint}" if hint else ""
        super().__init__(
            f"Model weights '{filename}' not found. Put the file in {_quoted_folders(self.folders)} "
            f"(weights are never downloaded automatically).{tail}"
        )


class WeightsPathError(LipSyncError):
    """A weights path given by the user names a folder, or nothing; the message names the path as given."""

    __module__ = STABLE_MODULE

    def __init__(self, path: str | os.PathLike, hint: str = "") -> None:
        self.path = Path(path)
        what = "is a folder, not a weights file" if self.path.is_dir() else "does not exist"
        tail = f" {hint}" if hint else ""
        super().__init__(f"The weights path '{os.fspath(path)}' {what}. Give the path of the .pth or .safetensors file.{tail}")


# What torch's safe loader says when it refuses a file; its advice to load unsafely is not passed on.
_TORCH_REFUSAL = "Weights only load failed"


def load_failure_reason(error: BaseException) -> str:
    """A short reason for a failed weights read, without torch's suggestion to load the file unsafely."""
    text = str(error)
    if _TORCH_REFUSAL in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].strip() if "WeightsUnpickler error:" in text else ""
        return "the safe loader refused it" + (f" ({detail})" if detail else "")
    return text.splitlines()[0] if text else type(error).__name__


class CorruptWeightsError(LipSyncError):
    """A weight file exists but cannot be read as tensors; ``hint`` says how to get a good copy (may be empty)."""

    __module__ = STABLE_MODULE

    def __init__(self, path: Path, reason: str, hint: str = "") -> None:
        self.path = path
        self.reason = reason
        again = f" {hint} (it is verified before it replaces the file)." if hint else ""
        super().__init__(
            f"'{path}' is not a weights file this pack can read safely: {reason}. It may be truncated, not a "
            f"checkpoint, or hold code instead of tensors; only tensor checkpoints (.pth/.pt/.model) and .safetensors "
            f"are read, and never by running code stored in the file; download it again from a source you trust.{again}"
        )


class UnsupportedModelError(LipSyncError):
    """A state dict matches none of the known architectures."""

    __module__ = STABLE_MODULE


class MediaError(LipSyncError):
    """An input video, image or audio file cannot be read, or holds nothing usable."""

    __module__ = STABLE_MODULE


class NoFaceError(LipSyncError):
    """No face was found where one was required."""

    __module__ = STABLE_MODULE


class DownloadError(LipSyncError):
    """A download failed or was rejected; the message says what is kept and what to do."""

    __module__ = STABLE_MODULE

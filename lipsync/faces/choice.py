"""Build the face detector a command line asked for: S3FD from its weights, or OpenCV's cascade."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import DEFAULT_DETECTION_BATCH, DEFAULT_DETECTION_MAX_SIDE
from ..errors import LipSyncError

if TYPE_CHECKING:  # torch is imported when a detector is built, not by the command line's option list
    import torch

    from .detector import FaceDetector

DETECTORS = ("s3fd", "opencv")


def build_detector(
    kind: str,
    s3fd_path: str | Path | None,
    device: torch.device | str = "cpu",
    max_side: int = DEFAULT_DETECTION_MAX_SIDE,
    batch_size: int = DEFAULT_DETECTION_BATCH,
    alternatives: str = "--detector opencv, or a fixed --box",
) -> FaceDetector:
    """``kind`` is ``s3fd`` (needs ``s3fd_path``) or ``opencv``; ``alternatives`` names the other ways out in the error."""
    if kind == "opencv":
        from .haar import HaarDetector

        return HaarDetector()
    if kind != "s3fd":
        raise ValueError(f"detector must be one of {DETECTORS}, got {kind!r}")
    if not s3fd_path:
        raise LipSyncError(f"Face detection needs --s3fd PATH/TO/s3fd.pth (or {alternatives}).")
    from .detector import S3FDDetector

    return S3FDDetector.from_file(s3fd_path, device=device, max_side=max_side, batch_size=batch_size)

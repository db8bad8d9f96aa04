"""Frames already in memory (a ComfyUI IMAGE batch) as a FrameSource, so the streaming pipeline can run on them.

The pipeline reads a file when it can; this is the fallback when a video exists only as decoded frames.
Each frame is converted to RGB uint8 when it is read, one at a time: no second copy of the whole clip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MediaError
from .read import FrameSource, FrameTransform


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A float RGB frame in 0..1 -> uint8 (rounded); uint8 frames pass unchanged. Extra channels (alpha) are dropped."""
    frame = frame[..., :3]
    if frame.dtype == np.uint8:
        return np.ascontiguousarray(frame)
    return (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class ArrayFrameSource(FrameSource):
    """A FrameSource over ``frames``: a sequence of ``[H, W, 3]`` arrays (float 0..1 or uint8), e.g. an IMAGE batch's numpy view."""

    frames: Sequence[np.ndarray] = field(default=(), repr=False, compare=False)

    @classmethod
    def of(cls, frames: Sequence[np.ndarray], fps: float, label: str = "frames in memory",
           transform: FrameTransform | None = None) -> ArrayFrameSource:  # fmt: skip
        """A source over ``frames`` at ``fps``; its size is the first frame's after ``transform``."""
        if len(frames) == 0:
            raise MediaError("The video has no frames.")
        if not fps > 0:
            raise MediaError(f"The video has no usable frame rate ({fps}).")
        transform = transform or FrameTransform()
        first = transform.apply(to_uint8(frames[0]))
        return cls(Path(label), float(fps), first.shape[1], first.shape[0], False, len(frames), transform, frames)

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.frames:
            yield self.transform.apply(to_uint8(np.asarray(frame)))

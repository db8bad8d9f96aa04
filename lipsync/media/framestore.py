"""A spill-to-disk store of decoded frames, for orders that revisit earlier frames (ping-pong)."""

from __future__ import annotations

import tempfile

import numpy as np


class FrameStore:
    """Frames of one size appended to an unnamed temporary file and read back by index through a memory map.

    RAM stays at a frame or two whatever the length; the file is made on the first frame and disappears
    when the store is closed.
    """

    def __init__(self) -> None:
        self._file = None
        self._shape: tuple[int, ...] | None = None
        self._count = 0
        self._map: np.memmap | None = None

    def __len__(self) -> int:
        return self._count

    def append(self, frame: np.ndarray) -> None:
        if self._map is not None:
            raise RuntimeError("frames cannot be added once reading has started")
        if self._shape is None:
            self._shape = frame.shape
            self._file = tempfile.TemporaryFile(prefix="lipsync-frames-")
        elif frame.shape != self._shape:
            raise ValueError(f"frame of shape {frame.shape} in a store of {self._shape}")
        self._file.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        self._count += 1

    def __getitem__(self, index: int) -> np.ndarray:
        """A copy of frame ``index``."""
        if self._map is None:
            if not self._count:
                raise IndexError("the frame store is empty")
            self._file.flush()
            self._map = np.memmap(self._file, dtype=np.uint8, mode="r", shape=(self._count, *self._shape))
        return np.array(self._map[index])

    def close(self) -> None:
        self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

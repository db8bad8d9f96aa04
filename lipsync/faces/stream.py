"""Detect and smooth faces over a stream of frames while holding only a few frames at a time."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

from .detector import FaceDetector
from .track import Box, BoxSmoother, Pads, padded_box


def first_face_box(detections: np.ndarray, frame: np.ndarray, pads: Pads) -> Box | None:
    """The reference's choice: the highest-scoring face, padded; ``None`` when there is none."""
    if len(detections) == 0:
        return None
    return padded_box(detections[0], frame.shape[0], frame.shape[1], pads)


def track_faces(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    pads: Pads = Pads(),
    smooth: bool = True,
    batch_size: int = 16,
) -> Iterator[tuple[np.ndarray, Box | None]]:
    """Yield ``(frame, box)`` in order: detection in batches, then smoothing, which looks 4 frames ahead.

    At most ``batch_size + 4`` frames are held, whatever the length of the stream.
    """
    smoother = BoxSmoother() if smooth else BoxSmoother(window=1)
    waiting: deque[np.ndarray] = deque()  # frames whose smoothed box is not final yet
    batch: list[np.ndarray] = []

    def detect_batch() -> Iterator[tuple[np.ndarray, Box | None]]:
        for frame, detections in zip(batch, detector.detect(batch), strict=True):
            waiting.append(frame)
            for _, box in smoother.push(first_face_box(detections, frame, pads)):
                yield waiting.popleft(), box
        batch.clear()

    for frame in frames:
        batch.append(frame)
        if len(batch) >= batch_size:
            yield from detect_batch()
    if batch:
        yield from detect_batch()
    for _, box in smoother.finish():
        yield waiting.popleft(), box

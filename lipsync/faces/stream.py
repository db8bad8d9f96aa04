"""Detect and smooth faces over a stream of frames while holding only a few frames at a time."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

from .detector import FaceDetector
from .track import Box, BoxSmoother, Pads, padded_box

DEFAULT_PADS = Pads()
BEST = "best score"
LARGEST = "largest"
LEFT_TO_RIGHT = "left to right"
FACE_CHOICES = (BEST, LARGEST, LEFT_TO_RIGHT)


def choose_face(detections: np.ndarray, choice: str = BEST, index: int = 0) -> np.ndarray | None:
    """Pick one detection: the best score (the reference), the largest, or the ``index``-th from the left."""
    if len(detections) == 0:
        return None
    if choice == BEST:
        return detections[0]
    if choice == LARGEST:
        areas = (detections[:, 2] - detections[:, 0]) * (detections[:, 3] - detections[:, 1])
        return detections[int(np.argmax(areas))]
    if choice == LEFT_TO_RIGHT:
        ordered = detections[np.argsort(detections[:, 0], kind="stable")]
        return ordered[index] if index < len(ordered) else None
    raise ValueError(f"face choice must be one of {FACE_CHOICES}, got {choice!r}")


def first_face_box(detections: np.ndarray, frame: np.ndarray, pads: Pads, choice: str = BEST, index: int = 0) -> Box | None:
    """The chosen face's padded box (the reference: highest score); ``None`` when there is none."""
    detection = choose_face(detections, choice, index)
    if detection is None:
        return None
    return padded_box(detection, frame.shape[0], frame.shape[1], pads)


def track_faces(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    pads: Pads = DEFAULT_PADS,
    smooth: bool = True,
    batch_size: int = 16,
    choice: str = BEST,
    index: int = 0,
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
            for _, box in smoother.push(first_face_box(detections, frame, pads, choice, index)):
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

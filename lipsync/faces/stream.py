"""Detect and smooth faces over a stream of frames while holding only a few frames at a time."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..choices import Choice
from ..defaults import DEFAULT_DETECTION_BATCH, DEFAULT_MAX_GAP
from ..errors import NoFaceError
from .boxes import Box, Pads, box_iou, padded_box
from .smoothing import BoxSmoother, GapFiller

if TYPE_CHECKING:  # the detector module imports torch; the command line's --help does not need it
    from .detector import FaceDetector

DEFAULT_PADS = Pads()


class FaceChoice(Choice):
    """Which face to follow when a frame has several."""

    BEST = "best score"
    LARGEST = "largest"
    LEFT_TO_RIGHT = "left to right"  # with a face index: 0 the leftmost face, 1 the next, ...
    CENTRE = "closest to centre"


BEST, LARGEST, LEFT_TO_RIGHT, CENTRE = FaceChoice
FACE_CHOICES = FaceChoice.words()
IDENTITY_MIN_IOU = 0.3  # a detection overlapping the last box this much is the same face


def choose_face(
    detections: np.ndarray, choice: str = BEST, index: int = 0, frame_centre: tuple[float, float] | None = None
) -> np.ndarray | None:
    """Pick one detection: the best score (the reference), the largest, the ``index``-th from the left,
    or the one closest to ``frame_centre`` (x, y)."""
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
    if choice == CENTRE:
        return detections[int(np.argmin(_distance_to(detections, frame_centre)))] if frame_centre is not None else detections[0]
    raise ValueError(f"face choice must be one of {FACE_CHOICES}, got {choice!r}")


def _distance_to(detections: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    centres_x = (detections[:, 0] + detections[:, 2]) / 2
    centres_y = (detections[:, 1] + detections[:, 3]) / 2
    return np.hypot(centres_x - point[0], centres_y - point[1])


def first_face_box(detections: np.ndarray, frame: np.ndarray, pads: Pads, choice: str = BEST, index: int = 0) -> Box | None:
    """The chosen face's padded box (the reference: highest score); ``None`` when there is none."""
    detection = choose_face(detections, choice, index, (frame.shape[1] / 2, frame.shape[0] / 2))
    if detection is None:
        return None
    return padded_box(detection, frame.shape[0], frame.shape[1], pads)


class FaceFollower:
    """Keeps the same person across frames when there are several faces.

    The first face is chosen by the rule (largest, position...); after that each frame takes the detection
    that overlaps the previous box most (IoU >= ``IDENTITY_MIN_IOU``), so another face that becomes larger
    or moves left does not steal the track. When the face is lost the rule chooses again. With the
    reference rule (best score) every frame is chosen on its own, as the reference does.
    """

    def __init__(self, pads: Pads, choice: str = BEST, index: int = 0) -> None:
        self.pads, self.choice, self.index = pads, choice, index
        self._last: Box | None = None
        self._found = False  # a face was chosen at least once

    def __call__(self, detections: np.ndarray, frame: np.ndarray) -> Box | None:
        if not self._found and self.choice == LEFT_TO_RIGHT and 0 < len(detections) <= self.index:
            found = f"{len(detections)} face{'s' if len(detections) > 1 else ''} found"
            raise NoFaceError(
                f"Face index {self.index} is out of range: {found} (the index counts from 0, left to right); use 0..{len(detections) - 1}."
            )
        self._found = self._found or len(detections) > 0
        if self.choice != BEST and self._last is not None and len(detections):
            boxes = [padded_box(detection, frame.shape[0], frame.shape[1], self.pads) for detection in detections]
            overlaps = [box_iou(box, self._last) for box in boxes]
            best = int(np.argmax(overlaps))
            if overlaps[best] >= IDENTITY_MIN_IOU:
                self._last = boxes[best]
                return self._last
        self._last = first_face_box(detections, frame, self.pads, self.choice, self.index)
        return self._last


def track_faces(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    pads: Pads = DEFAULT_PADS,
    smooth: bool = True,
    batch_size: int = DEFAULT_DETECTION_BATCH,
    choice: str = BEST,
    index: int = 0,
    max_gap: int = DEFAULT_MAX_GAP,
) -> Iterator[tuple[np.ndarray, Box | None]]:
    """Yield ``(frame, box)`` in order: detection in batches, identity kept by overlap, gaps of at most
    ``max_gap`` frames interpolated, then smoothing, which looks 4 frames ahead.

    At most ``batch_size + max_gap + 4`` frames are held, whatever the length of the stream.
    """
    smoother = BoxSmoother() if smooth else BoxSmoother(window=1)
    follower = FaceFollower(pads, choice, index)
    gaps = GapFiller(max_gap)
    waiting: deque[np.ndarray] = deque()  # frames whose smoothed box is not final yet
    batch: list[np.ndarray] = []

    def detect_batch() -> Iterator[tuple[np.ndarray, Box | None]]:
        for frame, detections in zip(batch, detector.detect(batch), strict=True):
            waiting.append(frame)
            for filled in gaps.push(follower(detections, frame)):
                for _, box in smoother.push(filled):
                    yield waiting.popleft(), box
        batch.clear()

    for frame in frames:
        batch.append(frame)
        if len(batch) >= batch_size:
            yield from detect_batch()
    if batch:
        yield from detect_batch()
    for filled in gaps.finish():
        for _, box in smoother.push(filled):
            yield waiting.popleft(), box
    for _, box in smoother.finish():
        yield waiting.popleft(), box

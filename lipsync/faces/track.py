"""From per-frame detections to the crop box of every frame: reference padding and 5-frame smoothing.

Boxes are integer ``(x1, y1, x2, y2)`` tuples in frame pixels (the reference's ``[y1:y2, x1:x2]``);
``None`` marks a frame without a face.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]

SMOOTHING_WINDOW = 5


@dataclass(frozen=True)
class Pads:
    """Pixels added around the detected face: (top, bottom, left, right); bottom 10 keeps the chin."""

    top: int = 0
    bottom: int = 10
    left: int = 0
    right: int = 0


def padded_box(detection: np.ndarray, frame_height: int, frame_width: int, pads: Pads) -> Box:
    """The reference crop box for one detection: clip at 0, truncate to int, pad, clamp to the frame."""
    x1, y1, x2, y2 = (int(value) for value in np.clip(detection[:4], 0, None))
    return (
        max(0, x1 - pads.left),
        max(0, y1 - pads.top),
        min(frame_width, x2 + pads.right),
        min(frame_height, y2 + pads.bottom),
    )


def fixed_box(box: tuple[int, int, int, int], frame_height: int, frame_width: int) -> Box:
    """Validate a user box given as the reference's (top, bottom, left, right) and return it as x1, y1, x2, y2."""
    top, bottom, left, right = box
    x1, y1 = max(0, left), max(0, top)
    x2, y2 = min(frame_width, right), min(frame_height, bottom)
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError(
            f"The box (top={top}, bottom={bottom}, left={left}, right={right}) does not cover part of the "
            f"{frame_width}x{frame_height} frame; give top < bottom and left < right inside it."
        )
    return x1, y1, x2, y2


class BoxSmoother:
    """Streaming form of the reference ``get_smoothened_boxes`` (window 5, looking ahead).

    Frame ``i`` gets the mean of boxes ``i .. i+4``, truncated to int. The last frames, whose window
    would run past the end, take the mean of the final five entries of the partly smoothed array, as
    the reference's in-place loop does. Frames without a face stay ``None`` and are left out of their
    neighbours' means. Only the last few boxes are held, so memory does not grow with length.
    """

    def __init__(self, window: int = SMOOTHING_WINDOW) -> None:
        self.window = max(1, window)
        self._pending: deque[np.ndarray] = deque()  # raw boxes not yet emitted (NaN = no face)
        self._emitted: deque[np.ndarray] = deque(maxlen=self.window)  # last smoothed boxes
        self._next_index = 0

    def push(self, box: Box | None) -> list[tuple[int, Box | None]]:
        """Add the next frame's raw box; return the frames whose smoothed box is now final."""
        self._pending.append(np.array(box if box is not None else (np.nan,) * 4, dtype=np.float64))
        ready = []
        while len(self._pending) >= self.window:
            ready.append(self._emit(np.stack(list(self._pending)[: self.window])))
        return ready

    def finish(self) -> list[tuple[int, Box | None]]:
        """Flush the tail once the last frame has been pushed."""
        ready = []
        while self._pending:
            # The reference window here is the last `window` entries: smoothed ones, then raw pending ones.
            earlier = list(self._emitted)[max(0, len(self._emitted) - (self.window - len(self._pending))) :]
            ready.append(self._emit(np.stack(earlier + list(self._pending))))
        return ready

    def _emit(self, window: np.ndarray) -> tuple[int, Box | None]:
        raw = self._pending.popleft()
        index = self._next_index
        self._next_index += 1
        if np.isnan(raw).any():
            self._emitted.append(raw)
            return index, None
        smoothed = np.trunc(np.nanmean(window, axis=0))
        self._emitted.append(smoothed)
        return index, tuple(int(value) for value in smoothed)


def smooth_boxes(boxes: Iterable[Box | None], window: int = SMOOTHING_WINDOW) -> list[Box | None]:
    """Smooth a whole list of boxes at once (see ``BoxSmoother``)."""
    smoother = BoxSmoother(window)
    result: list[Box | None] = []
    for box in boxes:
        result.extend(box for _, box in smoother.push(box))
    result.extend(box for _, box in smoother.finish())
    return result


@dataclass(frozen=True)
class FaceTrack:
    """Where the face is in every output frame: the link between detection, cropping and paste-back.

    ``boxes`` hold one smoothed box (or ``None``) per *source* frame; ``sources`` map each *output*
    frame to its source frame (identity, or a loop/ping-pong when the speech outlasts the video).
    """

    frame_height: int
    frame_width: int
    boxes: tuple[Box | None, ...]
    sources: tuple[int, ...]

    def __post_init__(self) -> None:
        if any(not 0 <= source < len(self.boxes) for source in self.sources):
            raise ValueError("a source index is outside the tracked frames")

    @classmethod
    def identity(cls, frame_height: int, frame_width: int, boxes: Iterable[Box | None]) -> FaceTrack:
        boxes = tuple(boxes)
        return cls(frame_height, frame_width, boxes, tuple(range(len(boxes))))

    @property
    def count(self) -> int:
        """Number of output frames."""
        return len(self.sources)

    def box(self, index: int) -> Box | None:
        """Crop box of output frame ``index``."""
        return self.boxes[self.sources[index]]

    @property
    def frames_without_face(self) -> int:
        return sum(self.box(index) is None for index in range(self.count))

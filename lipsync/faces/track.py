"""From per-frame detections to the crop box of every frame: reference padding and 5-frame smoothing.

Boxes are integer ``(x1, y1, x2, y2)`` tuples in frame pixels (the reference's ``[y1:y2, x1:x2]``);
``None`` marks a frame without a face.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import OptionError

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
    box = (max(0, x1 - pads.left), max(0, y1 - pads.top), min(frame_width, x2 + pads.right), min(frame_height, y2 + pads.bottom))
    if (box[2] - box[0] < 2 or box[3] - box[1] < 2) and min(pads.top, pads.bottom, pads.left, pads.right) < 0:
        raise OptionError(
            f"The pads (top={pads.top}, bottom={pads.bottom}, left={pads.left}, right={pads.right}) leave less than 2 px of the "
            f"{x2 - x1}x{y2 - y1} px face found; make the negative pads smaller."
        )
    return box


def fixed_box(box: tuple[int, int, int, int], frame_height: int, frame_width: int) -> Box:
    """Validate a user box given as the reference's (top, bottom, left, right) and return it as x1, y1, x2, y2."""
    top, bottom, left, right = box
    x1, y1 = max(0, left), max(0, top)
    x2, y2 = min(frame_width, right), min(frame_height, bottom)
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise OptionError(
            f"The box (top={top}, bottom={bottom}, left={left}, right={right}) does not cover at least 2x2 px of the "
            f"{frame_width}x{frame_height} frame (bottom - top >= 2 and right - left >= 2, inside the frame)."
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


def box_ious(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``first`` [A, 4+] with every box in ``second`` [B, 4+] (x1, y1, x2, y2)."""
    x1 = np.maximum(first[:, None, 0], second[None, :, 0])
    y1 = np.maximum(first[:, None, 1], second[None, :, 1])
    x2 = np.minimum(first[:, None, 2], second[None, :, 2])
    y2 = np.minimum(first[:, None, 3], second[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_first = (first[:, 2] - first[:, 0]) * (first[:, 3] - first[:, 1])
    area_second = (second[:, 2] - second[:, 0]) * (second[:, 3] - second[:, 1])
    union = area_first[:, None] + area_second[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    return float(box_ious(np.asarray([a], dtype=np.float64), np.asarray([b], dtype=np.float64))[0, 0])


class GapFiller:
    """Streaming fill of short face-less gaps: boxes are interpolated linearly across at most ``max_gap``
    frames between two detected faces; longer gaps, and gaps at the start or end, stay ``None``.

    Holds at most ``max_gap + 1`` boxes; ``push`` returns the boxes whose value is now final, in order.
    """

    def __init__(self, max_gap: int) -> None:
        self.max_gap = max(0, max_gap)
        self._last: Box | None = None
        self._gap = 0  # None boxes waiting after the last face
        self.filled = 0  # frames filled so far

    def push(self, box: Box | None) -> list[Box | None]:
        if box is None:
            if self._last is None or self.max_gap == 0:
                return [None]
            self._gap += 1
            if self._gap > self.max_gap:  # too long: release the gap as missing and stop waiting
                released = [None] * self._gap
                self._last, self._gap = None, 0
                return released
            return []
        ready: list[Box | None] = []
        if self._gap:
            start, end = np.array(self._last, np.float64), np.array(box, np.float64)
            for step in range(1, self._gap + 1):
                blend = start + (end - start) * step / (self._gap + 1)
                ready.append(tuple(round(float(value)) for value in blend))
            self.filled += self._gap
        ready.append(box)
        self._last, self._gap = box, 0
        return ready

    def finish(self) -> list[Box | None]:
        """A gap still open at the end has no face after it: it stays missing."""
        released = [None] * self._gap
        self._gap = 0
        return released


@dataclass(frozen=True, eq=False)
class CropGeometry:
    """Where a crop comes from: the 2x3 affine frame -> crop, its inverse, and the crop size (width, height).

    As facexlib's ``FaceRestoreHelper`` keeps per face, so a crop can be warped back exactly for any
    box size and aspect ratio. Pixel centres follow ``cv2.resize`` (half-pixel convention).
    """

    affine: np.ndarray
    inverse: np.ndarray
    size: tuple[int, int]

    @classmethod
    def from_region(cls, x: float, y: float, width: float, height: float, size: tuple[int, int]) -> CropGeometry:
        """Map the frame rectangle at ``(x, y)`` of ``width`` x ``height`` onto a ``size`` crop (no rotation)."""
        scale_x, scale_y = size[0] / width, size[1] / height
        # crop = (frame - origin + 0.5) * scale - 0.5: pixel centres map to pixel centres, as in cv2.resize.
        affine = np.array(
            [[scale_x, 0.0, (0.5 - x) * scale_x - 0.5], [0.0, scale_y, (0.5 - y) * scale_y - 0.5]],
            dtype=np.float64,
        )
        return cls(affine, cv2.invertAffineTransform(affine), (int(size[0]), int(size[1])))

    @classmethod
    def of_box(cls, box: Box, size: int) -> CropGeometry:
        """The Wav2Lip crop: the box stretched to ``size`` x ``size``."""
        x1, y1, x2, y2 = box
        return cls.from_region(x1, y1, x2 - x1, y2 - y1, (size, size))

    @classmethod
    def square_around(cls, box: Box, size: int, scale: float = 1.0, lift: float = 0.0) -> CropGeometry:
        """A square crop of side ``scale * max(box side)`` centred on the box, moved up by ``lift`` of its side."""
        x1, y1, x2, y2 = box
        side = scale * max(x2 - x1, y2 - y1)
        centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2 - lift * side
        return cls.from_region(centre_x - side / 2, centre_y - side / 2, side, side, (size, size))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """Warp the frame to the crop (bilinear; outside the frame the edge pixels repeat)."""
        return cv2.warpAffine(frame, self.affine, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def uncrop(self, crop: np.ndarray, region: Box) -> np.ndarray:
        """Warp a crop back into the frame pixels of ``region`` (x1, y1, x2, y2): the inverse mapping."""
        x1, y1, x2, y2 = region
        to_crop = self.affine.copy()
        to_crop[:, 2] += self.affine[:, :2] @ np.array([x1, y1], dtype=np.float64)  # region pixel -> frame pixel -> crop
        return cv2.warpAffine(
            crop, to_crop, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )


@dataclass(frozen=True)
class FaceTrack:
    """Where the face is in every output frame: the link between detection, cropping and paste-back.

    ``boxes`` hold one smoothed box (or ``None``) per *source* frame; ``sources`` map each *output*
    frame to its source frame (identity, or a loop/ping-pong when the speech outlasts the video).
    ``geometry`` gives each output frame's crop affine and its inverse, so paste-back and restoration
    warp exactly to and from the frame.
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

    def geometry(self, index: int, size: int) -> CropGeometry | None:
        """Affine and inverse of output frame ``index``'s ``size`` x ``size`` Wav2Lip crop (``None`` without a face)."""
        box = self.box(index)
        return None if box is None else CropGeometry.of_box(box, size)

"""Where the face is in each frame: the one place that decides between a fixed box and face detection.

Every path that needs face boxes (the command line's run, the nodes, training preprocess, sync scoring)
builds a ``FaceLocator`` from ``LocateOptions`` and asks it for boxes. The locator owns the choice
(a fixed box given? else detect) and everything detection brings with it: the detection cache,
detection on every Nth frame, the face choice, gap filling and smoothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..defaults import DEFAULT_DETECTION_BATCH, DEFAULT_MAX_GAP
from .boxes import Box, Pads, fixed_box
from .stream import BEST, FaceChoice, FaceFollower, choose_face, track_faces

if TYPE_CHECKING:  # the detector module imports torch
    from .detector import FaceDetector

RawBox = tuple[float, float, float, float]  # a detection as found: x1, y1, x2, y2 in frame pixels, no padding
NO_DETECTOR = "Give a face detector or a fixed box."


@dataclass(frozen=True, kw_only=True)
class LocateOptions:
    """How faces are found: a fixed ``box`` (top, bottom, left, right, the reference's order) in every frame, or
    detection with the settings below (which a fixed box ignores)."""

    box: tuple[int, int, int, int] | None = None
    pads: Pads = field(default_factory=Pads)
    smooth: bool = True  # average each box with the next four frames' (the reference)
    face_choice: str = BEST
    face_index: int = 0  # with 'left to right': 0 is the leftmost face
    max_gap: int = DEFAULT_MAX_GAP  # face-less gaps up to this many frames get interpolated boxes
    detect_every: int = 1  # run the detector on every Nth frame and interpolate between
    cache_dir: str | Path | None = None  # folder of the detection cache; None: no cache
    batch_size: int = DEFAULT_DETECTION_BATCH  # frames per detection batch

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be 1 or more, got {self.detect_every}")
        if self.max_gap < 0:
            raise ValueError("max_gap must be 0 or more")
        if self.batch_size < 1:
            raise ValueError(f"the detection batch size must be 1 or more, got {self.batch_size}")
        object.__setattr__(self, "face_choice", FaceChoice.of(self.face_choice))

    @property
    def fixed(self) -> bool:
        return self.box is not None


class FaceLocator:
    """Face boxes for frames, from a fixed box or from ``detector``.

    With a fixed box no detector is needed and frames are never looked at beyond their size; without one,
    ``detector`` is required (``no_detector`` is the error shown otherwise) and is wrapped in the detection cache
    and every-Nth-frame detection that the options ask for.
    """

    def __init__(self, options: LocateOptions, detector: FaceDetector | None = None, *, no_detector: str = NO_DETECTOR) -> None:
        self.options = options
        self.detector: FaceDetector | None = None
        if options.box is None:
            if detector is None:
                raise ValueError(no_detector)
            from .sparse import wrap_detection  # imports the detector module (torch) only when detecting

            self.detector = wrap_detection(detector, options.detect_every, options.cache_dir)

    @property
    def fixed(self) -> bool:
        """True when every frame gets the fixed box (no detection)."""
        return self.detector is None

    def fixed_box(self, height: int, width: int) -> Box:
        """The fixed box in ``height`` x ``width`` frames as x1, y1, x2, y2 (``OptionError`` when it misses them)."""
        if self.options.box is None:
            raise ValueError("this locator detects faces; there is no fixed box")
        return fixed_box(self.options.box, height, width)

    def track(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, Box | None]]:
        """Yield ``(frame, box)`` for a stream of RGB uint8 frames, in order; ``None`` where there is no face.

        Detection holds at most ``batch_size + max_gap + 4`` frames, whatever the length of the stream.
        """
        if self.detector is None:
            box: Box | None = None
            for frame in frames:
                if box is None:
                    box = self.fixed_box(frame.shape[0], frame.shape[1])
                yield frame, box
            return
        how = self.options
        yield from track_faces(frames, self.detector, how.pads, how.smooth, how.batch_size, how.face_choice, how.face_index, how.max_gap)

    def boxes(self, frames: Iterable[np.ndarray], count: int, frame_size: tuple[int, int]) -> list[Box | None]:
        """The boxes of ``count`` frames of ``frame_size`` (height, width); with a fixed box ``frames`` is not read,
        so a lazy iterable costs nothing."""
        if self.detector is None:
            return [self.fixed_box(*frame_size)] * count
        return [box for _, box in self.track(frames)]

    def each(self, frames: Sequence[np.ndarray]) -> list[Box | None]:
        """Boxes of unrelated frames (stills): each frame on its own, no smoothing, no gap filling."""
        if self.detector is None:
            return [self.fixed_box(frame.shape[0], frame.shape[1]) for frame in frames]
        options = self.options
        return [
            FaceFollower(options.pads, options.face_choice, options.face_index)(found, frame)
            for found, frame in zip(self.detector.detect(frames), frames, strict=True)
        ]

    def raw_boxes(self, frames: Iterable[np.ndarray], count: int, frame_size: tuple[int, int]) -> list[RawBox | None]:
        """The chosen face as detected (floats; no padding, smoothing or gap filling) in each of ``count`` frames, for
        scorers that cut their own crops; with a fixed box, that box in every frame and ``frames`` is not read."""
        if self.detector is None:
            x1, y1, x2, y2 = self.fixed_box(*frame_size)
            return [(float(x1), float(y1), float(x2), float(y2))] * count
        boxes: list[RawBox | None] = []
        batch: list[np.ndarray] = []

        def run() -> None:
            for detections in self.detector.detect(batch):
                found = choose_face(detections, self.options.face_choice, self.options.face_index)
                boxes.append(None if found is None else tuple(float(value) for value in found[:4]))
            batch.clear()

        for frame in frames:
            batch.append(frame)
            if len(batch) >= self.options.batch_size:
                run()
        if batch:
            run()
        return boxes

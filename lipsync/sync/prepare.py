"""From frames to the crops a SyncNet scorer needs: face boxes (the engine's detectors), 25 fps re-timing, cropping.

Three kinds of input: full frames (faces detected, or a fixed box), face crops (each image is the face
box, e.g. the output of Crop Faces or of a lip-sync run's crops), or crops already cut for syncnet_v2
(syncnet_python's 224x224 face tracks such as its ``data/example.avi``), used as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np

from ..choices import Choice
from ..faces.boxes import Pads, padded_box
from ..faces.locate import RawBox
from ..faces.smoothing import smooth_boxes
from ..faces.stream import DEFAULT_PADS
from .crops import cut_v2_crop, expert_crop, fill_missing_boxes, v2_crop_windows


class InputKind(Choice):
    """What the images given to a scorer are."""

    FULL_FRAMES = "full frames"  # whole frames: faces are detected, or a fixed box is used
    FACE_CROPS = "face crops"  # each image is the face box (Crop Faces' output, a run's crops)
    SYNCNET_CROPS = "syncnet_v2 crops (as is)"  # syncnet_python's 224x224 face tracks, used as they are


FULL_FRAMES, FACE_CROPS, SYNCNET_CROPS = InputKind
INPUT_KINDS = InputKind.words()


def iter_frames_at(frames: Iterable[np.ndarray], indices: Sequence[int]) -> Iterator[np.ndarray]:
    """Yield ``frames[i]`` for the non-decreasing ``indices`` from a one-pass stream (repeats allowed)."""
    wanted = iter(indices)
    target = next(wanted, None)
    for position, frame in enumerate(frames):
        while target == position:
            yield frame
            target = next(wanted, None)
        if target is None:
            return


def expert_boxes(raw: Sequence[RawBox | None], height: int, width: int, pads: Pads = DEFAULT_PADS, smooth: bool = True) -> list[tuple]:
    """The generation boxes (reference padding, 5-frame smoothing); frames without a face interpolated."""
    padded = [None if box is None else padded_box(np.asarray(box), height, width, pads) for box in raw]
    if smooth:
        padded = smooth_boxes(padded)
    return [tuple(int(value) for value in box) for box in fill_missing_boxes(padded)]


def scorer_crops(
    architecture: str,
    frames: Iterable[np.ndarray],
    input_kind: str,
    boxes: Sequence[RawBox | None] | None = None,
    frame_size: tuple[int, int] | None = None,
    pads: Pads = DEFAULT_PADS,
    smooth: bool = True,
) -> Iterator[np.ndarray]:
    """Crops for ``architecture`` (``syncnet_color`` 96x96, ``syncnet_v2`` 224x224), in frame order.

    ``boxes`` (one per frame, raw detections) and ``frame_size`` (height, width) are needed for full frames.
    """
    input_kind = InputKind.of(input_kind)
    v2 = architecture == "syncnet_v2"
    size = 224 if v2 else 96
    if input_kind == SYNCNET_CROPS or (input_kind == FACE_CROPS and not v2):
        yield from (frame if frame.shape[:2] == (size, size) else cv2.resize(frame, (size, size)) for frame in frames)
        return
    if input_kind == FACE_CROPS:
        # Each image is its own face box: the syncnet_python window around the whole image, no smoothing.
        for frame in frames:
            height, width = frame.shape[:2]
            yield cut_v2_crop(frame, v2_crop_windows(np.array([[0.0, 0.0, width, height]]), smoothing=1)[0])
        return
    if boxes is None or frame_size is None:
        raise ValueError("full frames need face boxes and the frame size")
    if v2:
        windows = v2_crop_windows(fill_missing_boxes(boxes))
        yield from (cut_v2_crop(frame, window) for frame, window in zip(frames, windows, strict=False))
    else:
        crops = expert_boxes(boxes, *frame_size, pads=pads, smooth=smooth)
        yield from (expert_crop(frame, box) for frame, box in zip(frames, crops, strict=False))

"""Crop boxes: the reference's padding of a detection, a user's fixed box, and box overlap.

Boxes are integer ``(x1, y1, x2, y2)`` tuples in frame pixels (the reference's ``[y1:y2, x1:x2]``);
``None`` marks a frame without a face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import OptionError

Box = tuple[int, int, int, int]


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

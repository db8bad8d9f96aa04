"""The Wav2Lip box crop and the reference's hard paste-back, in OpenCV's uint8 maths for uint8 frames.

Frames are RGB, uint8 (files) or float32 in 0..1 (ComfyUI ``IMAGE``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..faces.boxes import Box


def crop_faces(frames: Sequence[np.ndarray], boxes: Sequence[Box], size: int) -> np.ndarray:
    """Crop each box and resize it to ``size`` x ``size`` (bilinear, as ``cv2.resize`` in the reference)."""
    crops = [
        cv2.resize(np.ascontiguousarray(frame[y1:y2, x1:x2, :3]), (size, size))  # RGB of RGBA frames too
        for frame, (x1, y1, x2, y2) in zip(frames, boxes, strict=True)
    ]
    return np.stack(crops)


def paste_faces(frames: Sequence[np.ndarray], faces: np.ndarray, boxes: Sequence[Box]) -> None:
    """Write each generated face (float RGB 0..1) into its box, in place: the reference hard paste.

    uint8 frames get the reference's truncating ``* 255 -> uint8`` before the resize; float frames keep
    full precision.
    """
    for frame, face, (x1, y1, x2, y2) in zip(frames, faces, boxes, strict=True):
        if frame.dtype == np.uint8:
            face = (face * 255.0).astype(np.uint8)
        frame[y1:y2, x1:x2] = cv2.resize(face, (x2 - x1, y2 - y1)).astype(frame.dtype, copy=False)

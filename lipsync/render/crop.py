"""The Wav2Lip box crop, in OpenCV's uint8 maths for uint8 frames (the paste back is ``blend.paste_face``).

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


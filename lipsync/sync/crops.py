"""Face crops for the two SyncNets, and the 25 fps timeline both were trained on.

* Expert colour SyncNet (Wav2Lip): the engine's padded, smoothed box resized to 96x96 (the scorer keeps
  the lower half).
* syncnet_v2: the crop of syncnet_python's ``run_pipeline.crop_video``: box centre and half-size
  median-filtered over 13 frames, a window from ``bs`` above the centre to ``1.8 bs`` below it and
  ``1.4 bs`` either side (crop scale 0.4), outside the frame filled with grey 110, resized to 224x224.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.signal import medfilt

from ..errors import NoFaceError
from ..faces.boxes import Box

ANALYSIS_FPS = 25.0  # both SyncNets see 5 frames against 0.2 s of audio, i.e. 25 fps
V2_CROP_SCALE = 0.4
V2_SMOOTHING = 13
V2_FILL = 110


def resample_indices(count: int, fps: float, target_fps: float = ANALYSIS_FPS) -> list[int]:
    """Source frame of each frame of the clip re-timed to ``target_fps`` (nearest earlier-or-equal frame).

    Identity at 25 fps. Other rates are re-timed as ``ffmpeg -r 25`` does before syncnet_python runs.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if abs(fps - target_fps) < 1e-6:
        return list(range(count))
    total = int(count * target_fps / fps + 1e-9)
    return [min(count - 1, int(index * fps / target_fps + 1e-9)) for index in range(total)]


def fill_missing_boxes(boxes: Sequence[Sequence[float] | None]) -> np.ndarray:
    """``[N, 4]`` float boxes with frames without a face filled by linear interpolation (held at the ends).

    syncnet_python interpolates its face tracks the same way between detections.
    """
    found = [index for index, box in enumerate(boxes) if box is not None]
    if not found:
        raise NoFaceError("No face was found in any frame, so there is nothing to score. Give a fixed box or check the video.")
    known = np.array([boxes[index] for index in found], dtype=np.float64)
    return np.stack([np.interp(np.arange(len(boxes)), found, known[:, side]) for side in range(4)], axis=1)


def odd_kernel(kernel: int, length: int) -> int:
    """``kernel``, or the largest odd size that fits ``length`` samples (the reference never sees clips that short)."""
    return max(1, min(kernel, length if length % 2 else length - 1))


@dataclass(frozen=True)
class V2Crop:
    """One syncnet_v2 crop window in frame pixels: rows ``top..bottom``, columns ``left..right``.

    It may overhang the frame by up to ``margin`` pixels (the reference's padding); beyond that it is cut.
    """

    top: int
    bottom: int
    left: int
    right: int
    margin: int


def v2_crop_windows(boxes: np.ndarray, crop_scale: float = V2_CROP_SCALE, smoothing: int = V2_SMOOTHING) -> list[V2Crop]:
    """syncnet_python's crop windows for ``[N, 4]`` ``x1, y1, x2, y2`` boxes (one face track).

    Half-size ``s = max(w, h) / 2`` and the centre are median-filtered (``scipy.signal.medfilt``, which
    pads with zeros at the ends, as the reference does). The reference pads the frame by
    ``int(s * (1 + 2 * crop_scale))`` and truncates its slice bounds in that padded frame; the windows
    returned here are those bounds moved back to frame coordinates. Tracks shorter than the filter get a
    shorter one (the reference only crops tracks of over 100 frames).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) == 0:
        raise ValueError("expected boxes of shape [N, 4]")
    smoothing = odd_kernel(smoothing, len(boxes))
    half = medfilt(np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2, kernel_size=smoothing)
    centre_y = medfilt((boxes[:, 1] + boxes[:, 3]) / 2, kernel_size=smoothing)
    centre_x = medfilt((boxes[:, 0] + boxes[:, 2]) / 2, kernel_size=smoothing)
    windows = []
    for size, y, x in zip(half, centre_y, centre_x, strict=True):
        pad = int(size * (1 + 2 * crop_scale))
        my, mx = y + pad, x + pad
        windows.append(
            V2Crop(
                int(my - size) - pad,
                int(my + size * (1 + 2 * crop_scale)) - pad,
                int(mx - size * (1 + crop_scale)) - pad,
                int(mx + size * (1 + crop_scale)) - pad,
                pad,
            )
        )
    return windows


def cut_v2_crop(frame: np.ndarray, window: V2Crop, size: int = 224) -> np.ndarray:
    """Cut ``window`` out of ``frame`` (grey 110 outside it, as the reference's padded frame) and resize."""
    height, width = frame.shape[:2]
    top, left = max(window.top, -window.margin), max(window.left, -window.margin)
    bottom, right = min(window.bottom, height + window.margin), min(window.right, width + window.margin)
    pad = max(0, -top, -left, bottom - height, right - width)
    fill = V2_FILL if frame.dtype == np.uint8 else V2_FILL / 255.0
    top, bottom, left, right = top + pad, bottom + pad, left + pad, right + pad
    if bottom - top < 1 or right - left < 1:
        raise ValueError(f"the crop window {window} is empty")
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(fill, fill, fill)) if pad else frame
    return cv2.resize(np.ascontiguousarray(padded[top:bottom, left:right]), (size, size))


def expert_crop(frame: np.ndarray, box: Box, size: int = 96) -> np.ndarray:
    """The Wav2Lip face crop (box rows/columns) resized to ``size``; the scorer uses its lower half."""
    x1, y1, x2, y2 = box
    return cv2.resize(np.ascontiguousarray(frame[y1:y2, x1:x2]), (size, size))


def whole_image_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The box of an image that is already a face crop: the whole image."""
    return 0, 0, width, height

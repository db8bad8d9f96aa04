"""OpenCV's frontal-face Haar cascade: a weaker detector that needs no weight download.

It ships inside the ``opencv-python`` wheel, so it works on a machine without ``s3fd.pth``; use it
for frontal talking heads when S3FD is not available. Boxes carry no real score: the largest face
comes first, with score 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import LipSyncError
from .detector import FaceDetector

CASCADE_FILE = "haarcascade_frontalface_default.xml"


class HaarDetector(FaceDetector):
    """Detects frontal faces at least ``min_size_fraction`` of the frame's shorter side."""

    def __init__(self, min_size_fraction: float = 0.1, min_neighbors: int = 5) -> None:
        data_dir = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if not hasattr(cv2, "CascadeClassifier") or not data_dir:
            raise LipSyncError(
                f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 removed them). "
                "Use the S3FD detector (s3fd.pth), or install 'opencv-python<5'."
            )
        self.cascade = cv2.CascadeClassifier(f"{data_dir}{CASCADE_FILE}")
        if self.cascade.empty():
            raise LipSyncError(f"OpenCV's {CASCADE_FILE} could not be read from {data_dir}; use the S3FD detector.")
        self.min_size_fraction = min_size_fraction
        self.min_neighbors = min_neighbors

    def settings_key(self) -> str:
        return f"haar/{CASCADE_FILE}/min_size={self.min_size_fraction}/neighbors={self.min_neighbors}"

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if grey.dtype != np.uint8:
            grey = (np.clip(grey, 0.0, 1.0) * 255).astype(np.uint8)
        side = max(1, int(min(grey.shape) * self.min_size_fraction))
        found = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(side, side))
        if len(found) == 0:
            return np.zeros((0, 5), dtype=np.float32)
        boxes = np.asarray(found, dtype=np.float32)
        boxes = boxes[np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")]
        return np.column_stack(
            [boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3], np.ones(len(boxes))]
        ).astype(np.float32)

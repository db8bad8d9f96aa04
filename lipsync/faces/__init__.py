"""Face detection, crop boxes and their temporal smoothing."""

from .detector import FaceDetector, S3FDDetector, nms
from .stream import first_face_box, track_faces
from .track import Box, BoxSmoother, Pads, fixed_box, padded_box, smooth_boxes

__all__ = [
    "Box",
    "BoxSmoother",
    "FaceDetector",
    "Pads",
    "S3FDDetector",
    "first_face_box",
    "fixed_box",
    "nms",
    "padded_box",
    "smooth_boxes",
    "track_faces",
]

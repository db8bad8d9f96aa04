"""Face detection, crop boxes and their temporal smoothing."""

from .detector import FaceDetector, S3FDDetector, nms
from .stream import first_face_box, track_faces
from .track import Box, BoxSmoother, CropGeometry, FaceTrack, GapFiller, Pads, box_iou, fixed_box, padded_box, smooth_boxes

__all__ = [
    "Box",
    "BoxSmoother",
    "CropGeometry",
    "FaceDetector",
    "FaceTrack",
    "GapFiller",
    "Pads",
    "S3FDDetector",
    "box_iou",
    "first_face_box",
    "fixed_box",
    "nms",
    "padded_box",
    "smooth_boxes",
    "track_faces",
]

"""Face detection, crop boxes and their temporal smoothing.

The names below are imported on first use, so ``lipsync.faces.choice`` or ``.track`` can be imported
(by the command line's option list, for one) without loading torch through the detector module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_SOURCES = {
    "FaceDetector": ".detector",
    "S3FDDetector": ".detector",
    "nms": ".detector",
    "FaceLocator": ".locate",
    "LocateOptions": ".locate",
    "first_face_box": ".stream",
    "track_faces": ".stream",
    **dict.fromkeys(("Box", "Pads", "box_iou", "fixed_box", "padded_box"), ".boxes"),
    **dict.fromkeys(("BoxSmoother", "GapFiller", "smooth_boxes"), ".smoothing"),
    "CropGeometry": ".geometry",
    "FaceTrack": ".track",
}

__all__ = [
    "Box",
    "BoxSmoother",
    "CropGeometry",
    "FaceDetector",
    "FaceLocator",
    "FaceTrack",
    "GapFiller",
    "LocateOptions",
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

if TYPE_CHECKING:
    from .boxes import Box, Pads, box_iou, fixed_box, padded_box
    from .detector import FaceDetector, S3FDDetector, nms
    from .geometry import CropGeometry
    from .locate import FaceLocator, LocateOptions
    from .smoothing import BoxSmoother, GapFiller, smooth_boxes
    from .stream import first_face_box, track_faces
    from .track import FaceTrack


def __getattr__(name: str) -> object:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_SOURCES[name], __name__), name)

"""Where the face is in every output frame: the link between detection, cropping and paste-back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .boxes import Box
from .geometry import CropGeometry


@dataclass(frozen=True)
class FaceTrack:
    """Where the face is in every output frame: the link between detection, cropping and paste-back.

    ``boxes`` hold one smoothed box (or ``None``) per *source* frame; ``sources`` map each *output*
    frame to its source frame (identity, or a loop/ping-pong when the speech outlasts the video).
    ``geometry`` gives each output frame's crop affine and its inverse, so paste-back and restoration
    warp exactly to and from the frame.
    """

    frame_height: int
    frame_width: int
    boxes: tuple[Box | None, ...]
    sources: tuple[int, ...]

    def __post_init__(self) -> None:
        if any(not 0 <= source < len(self.boxes) for source in self.sources):
            raise ValueError("a source index is outside the tracked frames")

    @classmethod
    def identity(cls, frame_height: int, frame_width: int, boxes: Iterable[Box | None]) -> FaceTrack:
        boxes = tuple(boxes)
        return cls(frame_height, frame_width, boxes, tuple(range(len(boxes))))

    @property
    def count(self) -> int:
        """Number of output frames."""
        return len(self.sources)

    def box(self, index: int) -> Box | None:
        """Crop box of output frame ``index``."""
        return self.boxes[self.sources[index]]

    @property
    def frames_without_face(self) -> int:
        return sum(self.box(index) is None for index in range(self.count))

    def geometry(self, index: int, size: int) -> CropGeometry | None:
        """Affine and inverse of output frame ``index``'s ``size`` x ``size`` Wav2Lip crop (``None`` without a face)."""
        box = self.box(index)
        return None if box is None else CropGeometry.of_box(box, size)

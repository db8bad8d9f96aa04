"""Crop geometry: the affine from frame pixels to a crop and back, for any box size and aspect ratio."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .boxes import Box


@dataclass(frozen=True, eq=False)
class CropGeometry:
    """Where a crop comes from: the 2x3 affine frame -> crop, its inverse, and the crop size (width, height).

    As facexlib's ``FaceRestoreHelper`` keeps per face, so a crop can be warped back exactly for any
    box size and aspect ratio. Pixel centres follow ``cv2.resize`` (half-pixel convention).
    """

    affine: np.ndarray
    inverse: np.ndarray
    size: tuple[int, int]

    @classmethod
    def from_region(cls, x: float, y: float, width: float, height: float, size: tuple[int, int]) -> CropGeometry:
        """Map the frame rectangle at ``(x, y)`` of ``width`` x ``height`` onto a ``size`` crop (no rotation)."""
        scale_x, scale_y = size[0] / width, size[1] / height
        # crop = (frame - origin + 0.5) * scale - 0.5: pixel centres map to pixel centres, as in cv2.resize.
        affine = np.array(
            [[scale_x, 0.0, (0.5 - x) * scale_x - 0.5], [0.0, scale_y, (0.5 - y) * scale_y - 0.5]],
            dtype=np.float64,
        )
        return cls(affine, cv2.invertAffineTransform(affine), (int(size[0]), int(size[1])))

    @classmethod
    def of_box(cls, box: Box, size: int) -> CropGeometry:
        """The Wav2Lip crop: the box stretched to ``size`` x ``size``."""
        x1, y1, x2, y2 = box
        return cls.from_region(x1, y1, x2 - x1, y2 - y1, (size, size))

    @classmethod
    def square_around(cls, box: Box, size: int, scale: float = 1.0, lift: float = 0.0) -> CropGeometry:
        """A square crop of side ``scale * max(box side)`` centred on the box, moved up by ``lift`` of its side."""
        x1, y1, x2, y2 = box
        side = scale * max(x2 - x1, y2 - y1)
        centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2 - lift * side
        return cls.from_region(centre_x - side / 2, centre_y - side / 2, side, side, (size, size))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """Warp the frame to the crop (bilinear; outside the frame the edge pixels repeat)."""
        return cv2.warpAffine(frame, self.affine, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def uncrop(self, crop: np.ndarray, region: Box) -> np.ndarray:
        """Warp a crop back into the frame pixels of ``region`` (x1, y1, x2, y2): the inverse mapping."""
        x1, y1, x2, y2 = region
        to_crop = self.affine.copy()
        to_crop[:, 2] += self.affine[:, :2] @ np.array([x1, y1], dtype=np.float64)  # region pixel -> frame pixel -> crop
        return cv2.warpAffine(
            crop, to_crop, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )

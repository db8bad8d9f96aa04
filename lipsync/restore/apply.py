"""Restore the lip-synced face at 512 and blend the result back only inside the mouth mask.

The crop comes from the smoothed face box, not a fresh detection, so the restored region moves as
smoothly as the paste did and does not flicker. Without landmarks the crop approximates the FFHQ
alignment the restorers were trained on: a square around the box, about 1.7 times its side, with the
face a little below the centre.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..faces.boxes import Box
from ..faces.geometry import CropGeometry
from ..render.blend import PasteOptions, blend_into, mouth_mask
from .model import FaceRestorer

RESTORE_SIZE = 512
RESTORE_SCALE = 1.7  # square side / the box's longer side
RESTORE_LIFT = 0.05  # crop centre above the box centre, as a fraction of the side (FFHQ has the eyes at 0.47)

DEFAULT_MASK = PasteOptions()


def restore_geometry(box: Box, size: int = RESTORE_SIZE) -> CropGeometry:
    """The aligned ``size`` x ``size`` restoration crop around a face box."""
    return CropGeometry.square_around(box, size, RESTORE_SCALE, RESTORE_LIFT)


def restore_faces(
    frames: Sequence[np.ndarray],
    boxes: Sequence[Box],
    restorer: FaceRestorer,
    strength: float = 1.0,
    mask: PasteOptions = DEFAULT_MASK,
    fidelity: float = 0.5,
    on_device: bool | None = None,
) -> None:
    """Restore the face in each frame (in place): crop at 512 (the restorer's ``input_size``) from the
    full-resolution frame, restore in batches of the restorer's batch size, warp back through the inverse
    affine, and blend with ``strength`` x the mouth mask.

    The mouth mask uses ``mask``'s size, feather and offset whatever its paste mode. ``on_device`` (default: when
    the restorer runs on CUDA) does the crop, warp-back and blend with torch on the restorer's device instead of
    OpenCV on the CPU, one batched transfer each way instead of per-face CPU warps (within a grey level of the
    OpenCV path; the CPU default is unchanged).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"restoration strength must be between 0 and 1, got {strength}")
    if len(frames) != len(boxes):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} face boxes")
    if strength == 0.0 or not frames:
        return
    if on_device is None:
        on_device = getattr(getattr(restorer, "device", None), "type", "cpu") == "cuda"
    if on_device:
        _restore_on_device(frames, boxes, restorer, strength, mask, fidelity)
        return
    step = max(1, restorer.batch_size)
    for start in range(0, len(frames), step):  # one network batch at a time bounds the 512x512 crops held
        group_frames, group_boxes = frames[start : start + step], boxes[start : start + step]
        geometries = [restore_geometry(box, restorer.input_size) for box in group_boxes]
        crops = np.stack([geometry.crop(frame) for geometry, frame in zip(geometries, group_frames, strict=True)])
        if crops.dtype == np.uint8:
            crops = crops.astype(np.float32) / 255.0
        restored = restorer(crops.astype(np.float32, copy=False), fidelity=fidelity)
        for frame, geometry, face, box in zip(group_frames, geometries, restored, group_boxes, strict=True):
            x1, y1, x2, y2 = box
            back = geometry.uncrop(face, box) * (255.0 if frame.dtype == np.uint8 else 1.0)
            weights = mouth_mask(y2 - y1, x2 - x1, mask.mask_size, mask.feather, mask.vertical_offset) * np.float32(strength)
            blend_into(frame, back, weights, box)


def _restore_on_device(
    frames: Sequence[np.ndarray], boxes: Sequence[Box], restorer: FaceRestorer, strength: float, mask: PasteOptions, fidelity: float
) -> None:
    """``restore_faces`` with the warps and the blend in torch on ``restorer.device``."""
    import torch

    from .warp import affine_sample, blend_region, frame_tensor, sampled_region, shifted

    step = max(1, restorer.batch_size)
    size = restorer.input_size
    with torch.inference_mode():
        for start in range(0, len(frames), step):
            group_frames, group_boxes = frames[start : start + step], boxes[start : start + step]
            geometries = [restore_geometry(box, size) for box in group_boxes]
            # only the part of each frame that the crop reads (and the box, for the blend) goes to the device
            regions = [sampled_region(geometry.inverse, size, size, frame.shape, box)
                       for geometry, frame, box in zip(geometries, group_frames, group_boxes, strict=True)]  # fmt: skip
            tensors = [
                frame_tensor(frame[y1:y2, x1:x2], restorer.device) for frame, (x1, y1, x2, y2) in zip(group_frames, regions, strict=True)
            ]
            crops = torch.cat([
                affine_sample(tensor, shifted(geometry.inverse, *region[:2]), size, size)
                for tensor, geometry, region in zip(tensors, geometries, regions, strict=True)
            ])  # fmt: skip
            scale = 255.0 if group_frames[0].dtype == np.uint8 else 1.0
            restored = restorer.restore_tensor(crops / scale, fidelity=fidelity) * scale
            for index, (frame, geometry, box) in enumerate(zip(group_frames, geometries, group_boxes, strict=True)):
                x1, y1, x2, y2 = box
                to_crop = geometry.affine.copy()
                to_crop[:, 2] += geometry.affine[:, :2] @ np.array([x1, y1], dtype=np.float64)  # region pixel -> crop pixel
                back = affine_sample(restored[index : index + 1], to_crop, y2 - y1, x2 - x1)[0]
                weights = mouth_mask(y2 - y1, x2 - x1, mask.mask_size, mask.feather, mask.vertical_offset) * np.float32(strength)
                blend_region(frame, tensors[index], back, weights, box, origin=regions[index][:2])

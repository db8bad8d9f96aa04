"""The on-device restoration path (torch warps and blend, used on CUDA) against the OpenCV one, run here on CPU tensors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data
from test_restore import small_gfpgan

from lipsync.render.blend import PasteOptions
from lipsync.restore import restore_faces, restore_geometry
from lipsync.restore.warp import affine_sample

BOXES = [(160, 30, 280, 180), (150, 40, 262, 172), (171, 25, 275, 190)]  # the astronaut's face, drifting


def astronaut_frames(count: int) -> list[np.ndarray]:
    frame = np.ascontiguousarray(data.astronaut()[:300, :400])
    return [np.roll(frame, 3 * index, axis=1) for index in range(count)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_affine_sample_is_opencvs_inverse_warp(seed: int) -> None:
    """Random scale, rotation and shift (with parts outside the image): OpenCV's 1/32-pixel weights differ by < 1 grey level."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8), (0, 0), 2.0).astype(np.float32)
    angle, scale = rng.uniform(-0.5, 0.5), rng.uniform(0.5, 2.0)
    matrix = np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-30, 60)],
                       [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-30, 50)]])  # fmt: skip
    theirs = cv2.warpAffine(image, matrix, (70, 50), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    ours = affine_sample(torch.from_numpy(image).permute(2, 0, 1)[None], matrix, 50, 70)[0].permute(1, 2, 0).numpy()
    difference = np.abs(ours - theirs)
    assert difference.max() < 1.0 and difference.mean() < 0.1


def test_identity_warp_returns_the_image() -> None:
    image = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    torch.testing.assert_close(affine_sample(image, identity, 5, 7), image)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_on_device_restoration_matches_the_opencv_path(dtype) -> None:
    """uint8 (command line) and float 0..1 (ComfyUI IMAGE) frames: within 2 grey levels at any pixel, 0.1 on average,
    and only inside the boxes."""
    restorer = small_gfpgan(64)
    restorer.batch_size = 2
    frames = astronaut_frames(3)
    if dtype == np.float32:
        frames = [frame.astype(np.float32) / 255.0 for frame in frames]
    options = PasteOptions(mask_size=1.2, feather=0.4)
    cpu = [frame.copy() for frame in frames]
    device = [frame.copy() for frame in frames]
    restore_faces(cpu, BOXES, restorer, 0.9, options, on_device=False)
    restore_faces(device, BOXES, restorer, 0.9, options, on_device=True)
    scale = 255.0 if dtype == np.uint8 else 1.0
    for original, theirs, ours, box in zip(frames, cpu, device, BOXES, strict=True):
        assert ours.dtype == original.dtype
        changed = np.abs(ours.astype(np.float32) - original.astype(np.float32)).max(axis=2) > 0
        x1, y1, x2, y2 = box
        assert changed[y1:y2, x1:x2].mean() > 0.1 and not changed.copy()[np.r_[:y1, y2:300]].any()
        difference = np.abs(ours.astype(np.float32) - theirs.astype(np.float32)) * (255.0 / scale)
        assert difference.max() <= 2.0 and difference.mean() < 0.1


def test_the_crop_fed_to_the_network_matches_opencvs() -> None:
    frame = astronaut_frames(1)[0]
    geometry = restore_geometry(BOXES[0], 64)
    theirs = geometry.crop(frame).astype(np.float32)
    tensor = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    ours = affine_sample(tensor, geometry.inverse, 64, 64)[0].permute(1, 2, 0).numpy()
    difference = np.abs(ours - theirs)
    assert difference.max() <= 2.0 and difference.mean() < 0.3  # OpenCV also rounds its uint8 crop


@pytest.mark.parametrize("box", [(160, 30, 280, 180), (0, 0, 90, 120), (330, 200, 400, 300), (100, 100, 180, 190)])
def test_sampling_only_the_region_read_gives_the_whole_frames_crop(box) -> None:
    """The crop taken from the part of the frame it reads equals the crop taken from the whole frame, also where the
    crop reaches past the frame's edges (repeated edge pixels): within 0.02 of a grey level, the float32 rounding of
    the sampling positions, which now count from the part's corner (about 1e-5 px, times a gradient of at most 255 a
    pixel; 0.004 was seen)."""
    from lipsync.restore.warp import sampled_region, shifted

    frame = astronaut_frames(1)[0].astype(np.float32)
    geometry = restore_geometry(box, 64)
    whole = affine_sample(torch.from_numpy(frame).permute(2, 0, 1)[None], geometry.inverse, 64, 64)
    x1, y1, x2, y2 = sampled_region(geometry.inverse, 64, 64, frame.shape, box)
    assert x1 <= box[0] and y1 <= box[1] and x2 >= box[2] and y2 >= box[3]
    assert (x2 - x1) * (y2 - y1) < frame.shape[0] * frame.shape[1]
    part = torch.from_numpy(np.ascontiguousarray(frame[y1:y2, x1:x2])).permute(2, 0, 1)[None]
    torch.testing.assert_close(affine_sample(part, shifted(geometry.inverse, x1, y1), 64, 64), whole, atol=0.02, rtol=0)

"""Affine warps on torch tensors, so the restoration crop, warp-back and blend stay on the GPU with the network.

``affine_sample`` is ``cv2.warpAffine(image, M, size, INTER_LINEAR | WARP_INVERSE_MAP, BORDER_REPLICATE)`` with
``grid_sample``: every output pixel ``(x, y)`` reads the input at ``M @ [x, y, 1]`` (pixel centres at integers,
edges repeated). OpenCV quantises the bilinear weights to 1/32 of a pixel, ``grid_sample`` does not, so the two
differ by a fraction of a grey level on smooth images (the tests state the bound).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def affine_sample(images: torch.Tensor, to_source: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Warp ``images`` ``[N, C, H, W]`` (float) to ``[N, C, height, width]``; ``to_source`` is ``[N, 2, 3]`` or ``[2, 3]``
    (output pixel -> input pixel)."""
    count, _, source_height, source_width = images.shape
    matrices = torch.tensor(np.broadcast_to(to_source, (count, 2, 3)), dtype=torch.float64, device=images.device)
    ys = torch.arange(height, dtype=torch.float64, device=images.device)
    xs = torch.arange(width, dtype=torch.float64, device=images.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1)  # [height, width, 3]
    source = torch.einsum("hwk,nck->nhwc", points, matrices)  # [N, height, width, 2] as (x, y)
    scale = torch.tensor([2.0 / source_width, 2.0 / source_height], dtype=torch.float64, device=images.device)
    grid = ((source + 0.5) * scale - 1.0).to(images.dtype)  # align_corners=False: pixel i's centre is at (2i + 1) / size - 1
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def frame_tensor(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """An ``[H, W, 3]`` frame (uint8 or float) as a float32 ``[1, 3, H, W]`` tensor on ``device``, in the frame's scale."""
    return torch.from_numpy(np.ascontiguousarray(frame)).to(device, non_blocking=False).permute(2, 0, 1).unsqueeze(0).float()


def sampled_region(to_source: np.ndarray, height: int, width: int, frame_shape: tuple[int, ...], keep: tuple) -> tuple[int, int, int, int]:
    """The part of a frame that ``affine_sample(frame, to_source, height, width)`` reads, with the box ``keep`` inside it:
    ``(x1, y1, x2, y2)`` clipped to the frame.

    Sampling only this part (``affine_sample`` with the matrix shifted by its corner) gives what sampling the whole
    frame gives: it holds every pixel the bilinear taps reach inside the frame, and where the crop reaches past the
    frame it ends at the frame's own edge, which ``border`` padding repeats as before. So only this part of each frame
    goes to the GPU (a quarter to a tenth of a 720p frame for a face), not the whole frame.
    """
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], dtype=np.float64)
    points = corners @ np.asarray(to_source, dtype=np.float64).T  # [4, 2] as (x, y)
    frame_height, frame_width = frame_shape[:2]
    x1 = max(0, min(int(np.floor(points[:, 0].min())) - 1, keep[0]))
    y1 = max(0, min(int(np.floor(points[:, 1].min())) - 1, keep[1]))
    x2 = min(frame_width, max(int(np.ceil(points[:, 0].max())) + 2, keep[2]))
    y2 = min(frame_height, max(int(np.ceil(points[:, 1].max())) + 2, keep[3]))
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


def shifted(to_source: np.ndarray, x: int, y: int) -> np.ndarray:
    """``to_source`` for a part of the frame whose top-left corner is frame pixel ``(x, y)``."""
    matrix = np.array(to_source, dtype=np.float64)
    matrix[:, 2] -= (x, y)
    return matrix


def blend_region(
    frame: np.ndarray, frame_t: torch.Tensor, content: torch.Tensor, weights: np.ndarray, region: tuple, origin: tuple[int, int] = (0, 0)
) -> None:
    """``lipsync.render.blend.blend_into`` on the device: ``frame[region] = w * content + (1 - w) * frame[region]`` in place,
    with uint8 frames rounded the same way (``floor(x + 0.5)`` clipped to 0..255). ``frame_t`` holds the frame from
    pixel ``origin`` (x, y) on."""
    x1, y1, x2, y2 = region
    ox, oy = origin
    base = frame_t[0, :, y1 - oy : y2 - oy, x1 - ox : x2 - ox]
    mixed = base + torch.from_numpy(np.ascontiguousarray(weights)).to(base.device) * (content - base)
    if frame.dtype == np.uint8:
        mixed = (mixed + 0.5).clamp_(0, 255).to(torch.uint8)
    frame[y1:y2, x1:x2] = mixed.permute(1, 2, 0).cpu().numpy().astype(frame.dtype, copy=False)

"""Paste-back through a soft mouth mask: the mask, its feathering, colour matching, and a debug view.

The reference writes the whole generated box into the frame, which leaves a visible seam and replaces
the sharp upper face with Wav2Lip's blurry reconstruction. Here only the lower face (where Wav2Lip
changes anything) is blended in, through an ellipse that fades to zero before the box edge. Masks are
built in box coordinates, so they fit any box size and aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..defaults import DEFAULT_MASK_FEATHER, DEFAULT_MASK_OFFSET, DEFAULT_MASK_SIZE
from ..faces.boxes import Box
from .crop import paste_faces

BOX = "box"
MOUTH_MASK = "mouth mask"
PASTE_MODES = (BOX, MOUTH_MASK)

# The mask ellipse at size 1, as fractions of the box: it covers nose tip to chin, cheek to cheek.
MASK_CENTRE_Y = 0.70
MASK_RADIUS_X = 0.36
MASK_RADIUS_Y = 0.25
EDGE_FADE = 0.04  # the mask reaches zero this far (fraction of the box) inside the box edge


@dataclass(frozen=True)
class PasteOptions:
    """How a generated face goes back into its frame.

    ``mode``: ``box`` (the reference hard paste) or ``mouth mask``. ``mask_size`` scales the ellipse;
    ``feather`` is the soft edge as a fraction of the ellipse radius (0 = hard); ``vertical_offset``
    moves the ellipse down (+) or up (-) by that fraction of the box height; ``colour_match`` moves the
    generated face's per-channel mean and spread to the original's under the mask.
    """

    mode: str = BOX
    mask_size: float = DEFAULT_MASK_SIZE
    feather: float = DEFAULT_MASK_FEATHER
    vertical_offset: float = DEFAULT_MASK_OFFSET
    colour_match: bool = False

    def __post_init__(self) -> None:
        if self.mode not in PASTE_MODES:
            raise ValueError(f"paste mode must be one of {PASTE_MODES}, got {self.mode!r}")
        if not 0.1 <= self.mask_size <= 3.0:
            raise ValueError(f"mask size must be between 0.1 and 3, got {self.mask_size}")
        if not 0.0 <= self.feather <= 1.0:
            raise ValueError(f"feather must be between 0 and 1, got {self.feather}")
        if not -0.5 <= self.vertical_offset <= 0.5:
            raise ValueError(f"vertical offset must be between -0.5 and 0.5 of the box height, got {self.vertical_offset}")


@lru_cache(maxsize=64)
def mouth_mask(height: int, width: int, size: float = 1.0, feather: float = 0.35, vertical_offset: float = 0.0) -> np.ndarray:
    """Float32 ``[height, width]`` weights in 0..1 over a box: 1 around the mouth, fading to 0 well inside the edge.

    Read-only (it is cached per box size).
    """
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    dy = (ys[:, None] - (MASK_CENTRE_Y + vertical_offset)) / (MASK_RADIUS_Y * size)
    dx = (xs[None, :] - 0.5) / (MASK_RADIUS_X * size)
    distance = np.sqrt(dx * dx + dy * dy)
    if feather > 0:
        ramp = np.clip((1.0 - distance) / feather, 0.0, 1.0)
        mask = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible ring at either end of the fade
    else:
        mask = (distance <= 1.0).astype(np.float32)
    edge = np.minimum(np.minimum(ys, 1.0 - ys)[:, None], np.minimum(xs, 1.0 - xs)[None, :])
    mask = (mask * np.clip(edge / EDGE_FADE - 0.5, 0.0, 1.0)).astype(np.float32)
    mask.setflags(write=False)
    return mask


def box_mask(box: Box, options: PasteOptions) -> np.ndarray:
    """The weights ``[y2-y1, x2-x1]`` with which a face is pasted into ``box``."""
    x1, y1, x2, y2 = box
    if options.mode == BOX:
        return np.ones((y2 - y1, x2 - x1), dtype=np.float32)
    return mouth_mask(y2 - y1, x2 - x1, options.mask_size, options.feather, options.vertical_offset)


def match_colour(face: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``face`` with each channel's weighted mean and standard deviation moved to ``reference``'s (float arrays)."""
    total = float(weights.sum())
    if total <= 1e-6:
        return face
    w = weights[..., None] / total
    face_mean, ref_mean = (face * w).sum(axis=(0, 1)), (reference * w).sum(axis=(0, 1))
    face_std = np.sqrt(((face - face_mean) ** 2 * w).sum(axis=(0, 1)))
    ref_std = np.sqrt(((reference - ref_mean) ** 2 * w).sum(axis=(0, 1)))
    gain = np.clip(ref_std / np.maximum(face_std, 1e-4), 0.5, 2.0)  # bounded: a flat face must not explode
    return ((face - face_mean) * gain + ref_mean).astype(np.float32)


def blend_into(frame: np.ndarray, content: np.ndarray, weights: np.ndarray, region: Box) -> None:
    """``frame[region] = weights * content + (1 - weights) * frame[region]`` in place; ``content`` is float in
    the frame's scale (0..255 for uint8 frames, which are rounded back)."""
    x1, y1, x2, y2 = region
    original = frame[y1:y2, x1:x2]
    base = original.astype(np.float32)
    mixed = base + weights[..., None] * (content - base)
    if frame.dtype == np.uint8:
        original[...] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    else:
        original[...] = mixed.astype(frame.dtype, copy=False)


def paste_face(frame: np.ndarray, face: np.ndarray, box: Box, options: PasteOptions) -> None:
    """Put one generated face (float RGB 0..1, any square size) back into ``frame`` in place."""
    if options.mode == BOX and not options.colour_match:
        paste_faces([frame], face[None], [box])  # the reference, bit for bit
        return
    x1, y1, x2, y2 = box
    scale = 255.0 if frame.dtype == np.uint8 else 1.0
    resized = cv2.resize(np.ascontiguousarray(face, dtype=np.float32), (x2 - x1, y2 - y1)) * scale
    weights = box_mask(box, options)
    if options.colour_match:
        resized = match_colour(resized, frame[y1:y2, x1:x2].astype(np.float32), weights)
    blend_into(frame, resized, weights, box)


def frame_mask(height: int, width: int, box: Box | None, options: PasteOptions) -> np.ndarray:
    """The paste weights over the whole frame (zeros without a face): the debug view of the mask."""
    mask = np.zeros((height, width), dtype=np.float32)
    if box is not None:
        x1, y1, x2, y2 = box
        mask[y1:y2, x1:x2] = box_mask(box, options)
    return mask


def mask_overlay(frame: np.ndarray, mask: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """A float RGB copy of ``frame`` (0..1) tinted red where the mask is: shows what is replaced."""
    image = frame.astype(np.float32) / (255.0 if frame.dtype == np.uint8 else 1.0)
    tint = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    alpha = (opacity * mask)[..., None]
    return image * (1.0 - alpha) + tint * alpha

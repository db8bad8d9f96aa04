"""Paste-back through a soft mouth mask: the mask, its feathering, colour matching, and the red tint that shows it.

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

from ..choices import Choice
from ..defaults import DEFAULT_MASK_FEATHER, DEFAULT_MASK_OFFSET, DEFAULT_MASK_SIZE
from ..faces.boxes import Box


class PasteMode(Choice):
    """How a generated face goes back into its frame."""

    BOX = "box"  # the whole box, as the reference pastes
    MOUTH_MASK = "mouth mask"  # only the lower face, through a feathered ellipse


BOX, MOUTH_MASK = PasteMode
PASTE_MODES = PasteMode.words()

# The mask ellipse at size 1, as fractions of the box: it covers nose tip to chin, cheek to cheek.
MASK_CENTRE_Y = 0.70
MASK_RADIUS_X = 0.36
MASK_RADIUS_Y = 0.25
EDGE_FADE = 0.04  # the mask reaches zero this far (fraction of the box) inside the box edge
TINT_OPACITY = 0.5  # of the red tint where a mask is 1


@dataclass(frozen=True, kw_only=True)
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
        object.__setattr__(self, "mode", PasteMode.of(self.mode))
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
    """The weights ``[y2-y1, x2-x1]`` with which a face is pasted into ``box`` (read-only: cached per box size)."""
    x1, y1, x2, y2 = box
    if options.mode == BOX:
        return _ones(y2 - y1, x2 - x1)
    return mouth_mask(y2 - y1, x2 - x1, options.mask_size, options.feather, options.vertical_offset)


@lru_cache(maxsize=16)
def _ones(height: int, width: int) -> np.ndarray:
    ones = np.ones((height, width), dtype=np.float32)
    ones.setflags(write=False)
    return ones


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
    the frame's scale (0..255 for uint8 frames, which are rounded back).

    Only the rows and columns where a weight is non-zero are computed: elsewhere the sum gives the frame's own
    pixels back exactly, and a mouth mask leaves most of its box (the upper face) at zero.
    """
    rows, columns = np.flatnonzero(weights.any(axis=1)), np.flatnonzero(weights.any(axis=0))
    if not rows.size:
        return
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1
    x1, y1 = region[:2]
    original = frame[y1 + top : y1 + bottom, x1 + left : x1 + right]
    content, weights = content[top:bottom, left:right], weights[top:bottom, left:right, None]
    if frame.dtype == np.float32:  # the same sums, written back in place: one temporary
        change = content - original
        change *= weights
        original += change
        return
    base = original.astype(np.float32)
    mixed = base + weights * (content - base)
    if frame.dtype == np.uint8:
        original[...] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    else:
        original[...] = mixed.astype(frame.dtype, copy=False)


def paste_face(frame: np.ndarray, face: np.ndarray, box: Box, options: PasteOptions) -> None:
    """Put one generated face (float RGB 0..1, any square size) back into ``frame`` in place.

    Box mode is the reference hard paste bit for bit (its ``inference.py``: uint8 frames get its
    truncating ``* 255 -> uint8`` before the resize), resized straight into the frame's box.
    """
    x1, y1, x2, y2 = box
    face = np.ascontiguousarray(face, dtype=np.float32)
    if options.mode == BOX and not options.colour_match:
        _resize_into(face if frame.dtype != np.uint8 else (face * 255.0).astype(np.uint8), frame[y1:y2, x1:x2])
        return
    resized = cv2.resize(face, (x2 - x1, y2 - y1))
    if frame.dtype == np.uint8:
        resized *= 255.0
    weights = box_mask(box, options)
    if options.colour_match:
        resized = match_colour(resized, frame[y1:y2, x1:x2].astype(np.float32), weights)
    blend_into(frame, resized, weights, box)


def _resize_into(image: np.ndarray, target: np.ndarray) -> None:
    """``target[...] = cv2.resize(image, target's size)`` (bilinear), OpenCV writing straight into the view where it can."""
    written = cv2.resize(image, (target.shape[1], target.shape[0]), dst=target)
    if written is not target:  # another dtype or layout: OpenCV made its own array
        target[...] = written


def tint_mask(image: np.ndarray, weights: np.ndarray, opacity: float = TINT_OPACITY) -> None:
    """Tint a float RGB ``image`` (0..1) red in place, by ``opacity`` where ``weights`` (same height and width) are 1:
    shows what a paste replaces. Only the region under a mask needs it: weights 0 leave pixels as they are."""
    alpha = weights * np.float32(opacity)
    image *= (1.0 - alpha)[..., None]
    image[..., 0] += alpha

"""Paste-back through the mouth mask and the crop geometry, on real images (scikit-image) and the real clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import EXAMPLE_FACE_BOX, reference_hard_paste
from skimage import data

from lipsync.faces.geometry import CropGeometry
from lipsync.faces.track import FaceTrack
from lipsync.media.read import iter_video_frames
from lipsync.render.blend import BOX, MOUTH_MASK, PasteOptions, box_mask, match_colour, mouth_mask, paste_face, tint_mask
from lipsync.render.crop import crop_faces

ASTRONAUT_BOX = (160, 30, 280, 180)  # x1, y1, x2, y2 around the face in skimage's astronaut (512x512)


def astronaut() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())


@pytest.mark.parametrize(("height", "width"), [(96, 96), (150, 120), (61, 203), (300, 97)])
def test_mouth_mask_is_soft_inside_any_box(height: int, width: int) -> None:
    mask = mouth_mask(height, width)
    assert mask.shape == (height, width) and mask.dtype == np.float32 and not mask.flags.writeable
    assert mask[int(0.70 * height), width // 2] == pytest.approx(1.0, abs=0.05)  # the mouth
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert border.max() == 0.0  # no seam at the box edge
    assert mask[: int(0.4 * height)].max() == 0.0  # eyes and upper face keep the original
    assert 0.0 < mask.mean() < 0.5 and np.unique(mask).size > 10  # feathered, not a hard cut-out


def test_mask_size_feather_and_offset() -> None:
    base = mouth_mask(200, 200)
    assert mouth_mask(200, 200, size=1.3).sum() > base.sum() > mouth_mask(200, 200, size=0.7).sum()
    hard = mouth_mask(200, 200, feather=0.0)
    assert set(np.unique(hard[:180])) <= {0.0, 1.0} and hard.sum() > base.sum()  # hard but for the fade at the box edge
    centre_row = lambda mask: float((mask.sum(axis=1) * np.arange(200)).sum() / mask.sum())  # noqa: E731
    assert centre_row(mouth_mask(200, 200, vertical_offset=-0.1)) - centre_row(mouth_mask(200, 200, vertical_offset=-0.2)) == pytest.approx(
        20, abs=0.5
    )
    with pytest.raises(ValueError, match="paste mode"):
        PasteOptions(mode="ellipse")
    with pytest.raises(ValueError, match="feather"):
        PasteOptions(feather=2.0)


def test_box_mode_is_the_reference_paste_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    face = rng.random((96, 96, 3), dtype=np.float32)
    reference, ours = astronaut(), astronaut()
    reference_hard_paste(reference, face, ASTRONAUT_BOX)
    paste_face(ours, face, ASTRONAUT_BOX, PasteOptions(mode=BOX))
    assert np.array_equal(reference, ours)


def test_mouth_mask_paste_keeps_the_upper_face_and_has_no_seam() -> None:
    """A generated face with a colour cast pasted into the real astronaut: only the mask area changes."""
    frame = astronaut()
    x1, y1, x2, y2 = ASTRONAUT_BOX
    crop = crop_faces([frame], [ASTRONAUT_BOX], 96)[0].astype(np.float32) / 255.0
    generated = np.clip(crop * 0.8 + np.array([0.15, 0.0, 0.0], np.float32), 0, 1)
    boxed, masked = frame.copy(), frame.copy()
    paste_face(boxed, generated, ASTRONAUT_BOX, PasteOptions(mode=BOX))
    paste_face(masked, generated, ASTRONAUT_BOX, PasteOptions(mode=MOUTH_MASK))
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert np.array_equal(masked[outside], frame[outside]) and np.array_equal(boxed[outside], frame[outside])
    upper = slice(y1, y1 + int(0.4 * (y2 - y1)))
    assert np.array_equal(masked[upper, x1:x2], frame[upper, x1:x2])  # the eyes stay sharp and original
    assert np.abs(masked[y1 + 105, x1 + 60].astype(int) - frame[y1 + 105, x1 + 60]).max() > 5  # the mouth changed

    def seam(image: np.ndarray) -> float:  # mean jump across the box's left and bottom edges
        image = image.astype(np.float32)
        return float(np.abs(image[y1:y2, x1] - image[y1:y2, x1 - 1]).mean() + np.abs(image[y2, x1:x2] - image[y2 - 1, x1:x2]).mean())

    assert seam(masked) < 0.5 * seam(boxed)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_mouth_mask_paste_is_the_weighted_sum_over_the_whole_box(dtype) -> None:
    """The blend skips the rows and columns where the mask is 0: the result is still the formula over the whole box."""
    frame = astronaut() if dtype == np.uint8 else astronaut().astype(np.float32) / 255.0
    face = np.random.default_rng(3).random((96, 96, 3), dtype=np.float32)
    x1, y1, x2, y2 = ASTRONAUT_BOX
    ours = frame.copy()
    paste_face(ours, face, ASTRONAUT_BOX, PasteOptions(mode=MOUTH_MASK, mask_size=0.6))
    scale = 255.0 if dtype == np.uint8 else 1.0
    content = cv2.resize(face, (x2 - x1, y2 - y1)) * np.float32(scale)
    weights = mouth_mask(y2 - y1, x2 - x1, 0.6)[..., None]
    base = frame[y1:y2, x1:x2].astype(np.float32)
    mixed = base + weights * (content - base)
    expected = frame.copy()
    expected[y1:y2, x1:x2] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8) if dtype == np.uint8 else mixed
    assert (weights == 0).mean() > 0.5  # most of the box is skipped
    assert np.array_equal(ours, expected)


def test_colour_match_moves_the_cast_back() -> None:
    frame = astronaut()
    x1, y1, x2, y2 = ASTRONAUT_BOX
    crop = crop_faces([frame], [ASTRONAUT_BOX], 96)[0].astype(np.float32) / 255.0
    tinted = np.clip(crop * 0.7 + np.array([0.25, 0.0, 0.1], np.float32), 0, 1)
    plain, matched = frame.copy(), frame.copy()
    paste_face(plain, tinted, ASTRONAUT_BOX, PasteOptions(mode=MOUTH_MASK))
    paste_face(matched, tinted, ASTRONAUT_BOX, PasteOptions(mode=MOUTH_MASK, colour_match=True))
    region = (slice(y1, y2), slice(x1, x2))
    error = lambda image: np.abs(image[region].astype(float) - frame[region]).mean()  # noqa: E731
    assert error(matched) < 0.5 * error(plain)
    weights = np.ones((4, 4), np.float32)
    flat = np.full((4, 4, 3), 0.5, np.float32)
    assert np.isfinite(match_colour(flat, np.random.default_rng(1).random((4, 4, 3)).astype(np.float32), weights)).all()


def test_box_masks_and_the_red_tint() -> None:
    x1, y1, x2, y2 = ASTRONAUT_BOX
    assert np.array_equal(box_mask(ASTRONAUT_BOX, PasteOptions()), np.ones((y2 - y1, x2 - x1)))
    weights = box_mask(ASTRONAUT_BOX, PasteOptions(mode=MOUTH_MASK))
    assert weights.shape == (y2 - y1, x2 - x1) and not weights.flags.writeable
    image = astronaut()[y1:y2, x1:x2].astype(np.float32) / 255.0
    tinted = image.copy()
    tint_mask(tinted, weights)
    kept = weights == 0
    assert kept.any() and np.array_equal(tinted[kept], image[kept])  # no tint where nothing is replaced
    mouth = (105, 60)
    assert weights[mouth] == pytest.approx(1.0, abs=0.02)
    assert np.allclose(tinted[mouth], 0.5 * image[mouth] + [0.5, 0.0, 0.0], atol=0.01)  # half the way to pure red
    assert tinted.max() <= 1.0 and tinted.min() >= 0.0


@pytest.mark.parametrize("box", [(160, 30, 280, 180), (101, 57, 330, 140), (0, 0, 77, 300)])
def test_box_geometry_matches_the_reference_resize(box) -> None:
    """The affine of a box crop reproduces cv2.resize of the box, and its inverse maps the crop back."""
    frame = astronaut()
    geometry = CropGeometry.of_box(box, 96)
    warped = geometry.crop(frame)
    resized = crop_faces([frame], [box], 96)[0]
    assert warped.shape == resized.shape == (96, 96, 3)
    assert np.abs(warped.astype(int) - resized).mean() < 1.0
    corners = cv2.transform(np.array([[[box[0] - 0.5, box[1] - 0.5], [box[2] - 0.5, box[3] - 0.5]]]), geometry.affine)[0]
    assert np.allclose(corners, [[-0.5, -0.5], [95.5, 95.5]], atol=1e-9)
    assert np.allclose(cv2.transform(cv2.transform(corners[None], geometry.inverse), geometry.affine)[0], corners)


def test_square_geometry_round_trip_on_the_real_clip(example_video) -> None:
    """Upscale the face of a real frame to 512 and warp it back: the region returns within interpolation error."""
    frame = next(iter_video_frames(example_video))
    top, bottom, left, right = EXAMPLE_FACE_BOX
    box = (left, top, right, bottom)
    geometry = CropGeometry.square_around(box, 512, scale=1.7, lift=0.05)
    crop = geometry.crop(frame)
    assert crop.shape == (512, 512, 3)
    back = geometry.uncrop(crop.astype(np.float32), box)
    assert back.shape == (bottom - top, right - left, 3)
    assert np.abs(back - frame[top:bottom, left:right]).mean() < 2.0
    track = FaceTrack.identity(*frame.shape[:2], [box, None])
    assert track.geometry(1, 96) is None and np.allclose(track.geometry(0, 96).affine, CropGeometry.of_box(box, 96).affine)

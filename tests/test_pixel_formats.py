"""Pixel formats at the edges of the pipeline: RGB -> yuv420p for the encoder (BT.601 limited range, 2x2-mean chroma,
as the standard states it) and float frames -> 8-bit levels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lipsync.media.yuv import rgb_to_yuv420p

# ITU-R BT.601: Kr = 0.299, Kb = 0.114; limited range puts luma on 16..235 and chroma on 16..240 around 128.
KR, KB = 0.299, 0.114
KG = 1 - KR - KB


def bt601_limited(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y at full size, Cb and Cr of each 2x2 block's mean colour, in float (the standard's formulas)."""
    r, g, b = (rgb[..., channel].astype(np.float64) / 255 for channel in range(3))
    y = 16 + 219 * (KR * r + KG * g + KB * b)
    height, width = rgb.shape[:2]
    mean = rgb.astype(np.float64).reshape(height // 2, 2, width // 2, 2, 3).mean(axis=(1, 3)) / 255
    luma = KR * mean[..., 0] + KG * mean[..., 1] + KB * mean[..., 2]
    cb = 128 + 224 * (mean[..., 2] - luma) / (2 * (1 - KB))
    cr = 128 + 224 * (mean[..., 0] - luma) / (2 * (1 - KR))
    return y, cb, cr


def split(planes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = planes.reshape(-1).astype(np.float64)
    luma, quarter = height * width, height * width // 4
    shape = (height // 2, width // 2)
    return flat[:luma].reshape(height, width), flat[luma : luma + quarter].reshape(shape), flat[luma + quarter :].reshape(shape)


@pytest.mark.parametrize("height,width", [(720, 1280), (722, 1282), (6, 10)])  # 722: the chroma planes end mid-row
def test_planes_follow_bt601_limited_range_with_block_mean_chroma(height: int, width: int) -> None:
    rng = np.random.default_rng(height)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    planes = rgb_to_yuv420p(frame)
    assert planes.shape == (height * 3 // 2, width) and planes.dtype == np.uint8
    for ours, expected in zip(split(planes, height, width), bt601_limited(frame), strict=True):
        assert np.abs(ours - expected).max() <= 2.0


@pytest.mark.parametrize(
    "colour,yuv",
    [((0, 0, 0), (16, 128, 128)), ((255, 255, 255), (235, 128, 128)), ((255, 0, 0), (81, 90, 240)),
     ((0, 255, 0), (145, 54, 34)), ((0, 0, 255), (41, 240, 110))],
)  # fmt: skip
def test_flat_colours_land_on_the_standard_codes(colour: tuple[int, int, int], yuv: tuple[int, int, int]) -> None:
    """The BT.601 limited-range codes of black, white and the primaries (Rec. 601 tables, rounded)."""
    frame = np.empty((8, 8, 3), dtype=np.uint8)
    frame[...] = colour
    y, u, v = split(rgb_to_yuv420p(frame), 8, 8)
    assert np.abs(np.array([y.mean(), u.mean(), v.mean()]) - yuv).max() <= 1
    assert y.std() == u.std() == v.std() == 0


def test_chroma_is_the_mean_of_each_block_not_one_pixel() -> None:
    """Red and blue columns side by side: each chroma sample is their mix, not the left pixel's colour."""
    frame = np.zeros((4, 4, 3), dtype=np.uint8)
    frame[:, 0::2] = (255, 0, 0)
    frame[:, 1::2] = (0, 0, 255)
    _, u, v = split(rgb_to_yuv420p(frame), 4, 4)
    assert np.abs(u - (90 + 240) / 2).max() <= 1 and np.abs(v - (240 + 110) / 2).max() <= 1


def test_matches_what_ffmpeg_writes_on_a_natural_image() -> None:
    """Against swscale (PyAV's own rgb24 -> yuv420p) on a photograph: luma within 1; chroma within 0.6 on average
    (its rows are weighted a little differently, which shows only at sharp colour edges)."""
    av = pytest.importorskip("av")
    from skimage import data

    frame = cv2.resize(data.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)
    ffmpeg = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p").to_ndarray()
    ours = rgb_to_yuv420p(frame)
    assert np.abs(ffmpeg[:240].astype(int) - ours[:240]).max() <= 1
    chroma = np.abs(ffmpeg[240:].astype(int) - ours[240:])
    assert chroma.mean() <= 0.6 and np.percentile(chroma, 99) <= 4


def test_odd_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420p(np.zeros((5, 4, 3), dtype=np.uint8))


def reference_levels(frame: np.ndarray) -> np.ndarray:
    """Float frame -> 8-bit levels as plainly stated: clip to 0..1, scale by 255, round halves up (float64)."""
    return np.floor(np.clip(frame.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.int64)


def test_float_frames_become_the_nearest_level_saturated() -> None:
    from lipsync.media.arrays import to_uint8

    rng = np.random.default_rng(3)
    frame = rng.random((37, 53, 4), dtype=np.float32) * 1.4 - 0.2  # alpha, and values beyond 0..1
    ours = to_uint8(frame)
    assert ours.shape == (37, 53, 3) and ours.dtype == np.uint8 and ours.flags.c_contiguous
    expected = reference_levels(frame[..., :3])
    ties = np.isclose((np.clip(frame[..., :3], 0, 1) * 255.0) % 1.0, 0.5, atol=1e-4)  # halfway: either level is right
    assert np.array_equal(ours[~ties], expected[~ties]) and np.abs(ours[ties] - expected[ties]).max(initial=0) <= 1
    assert (ours[frame[..., :3] <= 0] == 0).all() and (ours[frame[..., :3] >= 1] == 255).all()


def test_eight_bit_levels_survive_the_round_trip() -> None:
    from lipsync.media.arrays import to_uint8

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(to_uint8(levels.astype(np.float32) / 255.0), levels)
    assert np.array_equal(to_uint8(np.stack([levels, levels]).astype(np.float64) / 255.0), np.stack([levels, levels]))

"""RGB -> YUV 4:2:0 for the H.264 encoder, with OpenCV's threaded kernels instead of FFmpeg's swscale.

Handing PyAV RGB frames makes it convert each one with swscale on the calling thread: 2.6 ms a 720p frame,
single-threaded, on the pipeline's critical path (the 2-core VM; a GPU run wants 2 ms a frame in all). This
conversion takes about 0.8 ms there and spreads over OpenCV's threads. It writes what swscale writes by
default for ``yuv420p``: BT.601 limited range (luma 16..235, chroma 16..240). Luma matches swscale to 1
level; each chroma sample is the plain mean of its 2x2 pixels (swscale weights the rows a little
differently), so the two differ only where colour changes from one pixel to the next.
"""

from __future__ import annotations

import cv2
import numpy as np

# Full-range (JPEG) chroma, which OpenCV's YCrCb gives, to limited range: 128 + (value - 128) * 224 / 255.
_LIMITED_CHROMA = np.clip(np.round(128 + (np.arange(256) - 128) * 224 / 255), 0, 255).astype(np.uint8)


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """An RGB uint8 ``[H, W, 3]`` frame (even H and W) -> the ``yuv420p`` planes stacked as ``[H * 3 // 2, W]``
    (Y, then U, then V), the layout ``av.VideoFrame.from_ndarray(..., format="yuv420p")`` takes."""
    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs an even frame size, got {width}x{height}")
    planes = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # its luma is BT.601 limited; its chroma is point-sampled
    half = cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA)  # the mean of each 2x2
    chroma = cv2.LUT(cv2.cvtColor(half, cv2.COLOR_RGB2YCrCb), _LIMITED_CHROMA)
    flat, luma, quarter = planes.reshape(-1), height * width, height * width // 4  # a plane can end mid-row
    flat[luma : luma + quarter] = chroma[..., 2].reshape(-1)  # U (Cb)
    flat[luma + quarter :] = chroma[..., 1].reshape(-1)  # V (Cr)
    return planes

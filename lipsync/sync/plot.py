"""Draw per-window sync scores as an image (numpy + OpenCV, no plotting library)."""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND = (255, 255, 255)
AXIS = (90, 90, 90)
GRID = (225, 225, 225)
LINE = (31, 119, 180)  # RGB
ZERO = (200, 60, 60)


def plot_scores(values: np.ndarray, fps: float, title: str, width: int = 960, height: int = 360) -> np.ndarray:
    """A line plot of ``values`` (one per window, at ``fps``) as an RGB uint8 ``[height, width, 3]`` image."""
    values = np.asarray(values, dtype=np.float64)
    image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    left, right, top, bottom = 64, width - 16, 36, height - 40
    cv2.putText(image, title, (left, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.55, AXIS, 1, cv2.LINE_AA)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return image
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    margin = 0.05 * (high - low)
    low, high = low - margin, high + margin

    def y_of(value: float) -> int:
        return round(bottom - (value - low) / (high - low) * (bottom - top))

    def x_of(index: float) -> int:
        return round(left + index / max(1, len(values) - 1) * (right - left))

    for tick in np.linspace(low, high, 5):
        y = y_of(tick)
        cv2.line(image, (left, y), (right, y), GRID, 1)
        cv2.putText(image, f"{tick:.2f}", (4, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, AXIS, 1, cv2.LINE_AA)
    seconds = (len(values) - 1) / fps if fps > 0 else 0.0
    for fraction in np.linspace(0.0, 1.0, 6):
        x = round(left + fraction * (right - left))
        cv2.putText(image, f"{fraction * seconds:.1f}s", (x - 12, bottom + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, AXIS, 1, cv2.LINE_AA)
    if low < 0 < high:
        cv2.line(image, (left, y_of(0.0)), (right, y_of(0.0)), ZERO, 1)
    cv2.rectangle(image, (left, top), (right, bottom), AXIS, 1)
    points = np.array([(x_of(index), y_of(value)) for index, value in enumerate(values) if np.isfinite(value)], dtype=np.int32)
    if len(points) == 1:
        cv2.circle(image, tuple(int(v) for v in points[0]), 3, LINE, -1)
    else:
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, LINE, 2, cv2.LINE_AA)
    return image

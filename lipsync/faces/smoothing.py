"""Boxes over time: the reference's 5-frame smoothing, streamed, and the filling of short face-less gaps."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

from .boxes import Box

SMOOTHING_WINDOW = 5


class BoxSmoother:
    """Streaming form of the reference ``get_smoothened_boxes`` (window 5, looking ahead).

    Frame ``i`` gets the mean of boxes ``i .. i+4``, truncated to int. The last frames, whose window
    would run past the end, take the mean of the final five entries of the partly smoothed array, as
    the reference's in-place loop does. Frames without a face stay ``None`` and are left out of their
    neighbours' means. Only the last few boxes are held, so memory does not grow with length.
    """

    def __init__(self, window: int = SMOOTHING_WINDOW) -> None:
        self.window = max(1, window)
        self._pending: deque[np.ndarray] = deque()  # raw boxes not yet emitted (NaN = no face)
        self._emitted: deque[np.ndarray] = deque(maxlen=self.window)  # last smoothed boxes
        self._next_index = 0

    def push(self, box: Box | None) -> list[tuple[int, Box | None]]:
        """Add the next frame's raw box; return the frames whose smoothed box is now final."""
        self._pending.append(np.array(box if box is not None else (np.nan,) * 4, dtype=np.float64))
        ready = []
        while len(self._pending) >= self.window:
            ready.append(self._emit(np.stack(list(self._pending)[: self.window])))
        return ready

    def finish(self) -> list[tuple[int, Box | None]]:
        """Flush the tail once the last frame has been pushed."""
        ready = []
        while self._pending:
            # The reference window here is the last `window` entries: smoothed ones, then raw pending ones.
            earlier = list(self._emitted)[max(0, len(self._emitted) - (self.window - len(self._pending))) :]
            ready.append(self._emit(np.stack(earlier + list(self._pending))))
        return ready

    def _emit(self, window: np.ndarray) -> tuple[int, Box | None]:
        raw = self._pending.popleft()
        index = self._next_index
        self._next_index += 1
        if np.isnan(raw).any():
            self._emitted.append(raw)
            return index, None
        smoothed = np.trunc(np.nanmean(window, axis=0))
        self._emitted.append(smoothed)
        return index, tuple(int(value) for value in smoothed)


def smooth_boxes(boxes: Iterable[Box | None], window: int = SMOOTHING_WINDOW) -> list[Box | None]:
    """Smooth a whole list of boxes at once (see ``BoxSmoother``)."""
    smoother = BoxSmoother(window)
    result: list[Box | None] = []
    for box in boxes:
        result.extend(box for _, box in smoother.push(box))
    result.extend(box for _, box in smoother.finish())
    return result


class GapFiller:
    """Streaming fill of short face-less gaps: boxes are interpolated linearly across at most ``max_gap``
    frames between two detected faces; longer gaps, and gaps at the start or end, stay ``None``.

    Holds at most ``max_gap + 1`` boxes; ``push`` returns the boxes whose value is now final, in order.
    """

    def __init__(self, max_gap: int) -> None:
        self.max_gap = max(0, max_gap)
        self._last: Box | None = None
        self._gap = 0  # None boxes waiting after the last face
        self.filled = 0  # frames filled so far

    def push(self, box: Box | None) -> list[Box | None]:
        if box is None:
            if self._last is None or self.max_gap == 0:
                return [None]
            self._gap += 1
            if self._gap > self.max_gap:  # too long: release the gap as missing and stop waiting
                released = [None] * self._gap
                self._last, self._gap = None, 0
                return released
            return []
        ready: list[Box | None] = []
        if self._gap:
            start, end = np.array(self._last, np.float64), np.array(box, np.float64)
            for step in range(1, self._gap + 1):
                blend = start + (end - start) * step / (self._gap + 1)
                ready.append(tuple(round(float(value)) for value in blend))
            self.filled += self._gap
        ready.append(box)
        self._last, self._gap = box, 0
        return ready

    def finish(self) -> list[Box | None]:
        """A gap still open at the end has no face after it: it stays missing."""
        released = [None] * self._gap
        self._gap = 0
        return released

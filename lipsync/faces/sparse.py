"""Detect faces on every Nth frame only and interpolate the boxes in between.

Faces in talking-head video move slowly, so running the detector on 1 frame in N and linearly
interpolating the detections between key frames cuts detection cost by about N with boxes within
a few pixels; the 5-frame smoothing that follows hides the rest.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .boxes import box_ious
from .cache import CachedDetector
from .detector import FaceDetector


def key_frames(count: int, every: int) -> list[int]:
    """Positions detected in a batch of ``count`` frames: every ``every``-th one, and always the last."""
    keys = list(range(0, count, every))
    if keys[-1] != count - 1:
        keys.append(count - 1)
    return keys


def interpolate_detections(before: np.ndarray, after: np.ndarray, weight: float, min_iou: float = 0.3) -> np.ndarray:
    """Detections at fraction ``weight`` (0..1) of the way from key frame ``before`` to ``after``.

    Faces present in both (matched by box overlap) move linearly; a face seen in only one key frame
    is kept while the frame is nearer that key frame. Rows stay sorted by score, highest first.
    """
    if len(before) == 0 or len(after) == 0:
        return (before if weight < 0.5 else after).copy()
    overlap = box_ious(before, after)
    rows = []
    matched_after = set()
    for index, detection in enumerate(before):
        partner = int(np.argmax(overlap[index]))
        if overlap[index, partner] >= min_iou and partner not in matched_after:
            matched_after.add(partner)
            rows.append((1.0 - weight) * detection + weight * after[partner])
        elif weight < 0.5:
            rows.append(detection)
    if weight >= 0.5:
        rows.extend(after[index] for index in range(len(after)) if index not in matched_after)
    if not rows:
        return np.zeros((0, before.shape[1]), dtype=before.dtype)
    result = np.stack(rows).astype(before.dtype)
    return result[np.argsort(-result[:, 4], kind="stable")]


class SparseDetector(FaceDetector):
    """Runs ``detector`` on every ``every``-th frame of each batch (and its last) and interpolates the rest."""

    def __init__(self, detector: FaceDetector, every: int) -> None:
        if every < 1:
            raise ValueError(f"detect every N frames needs N >= 1, got {every}")
        self.detector, self.every = detector, every

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.every == 1 or len(frames) <= 2:
            return self.detector.detect(frames)
        keys = key_frames(len(frames), self.every)
        found = dict(zip(keys, self.detector.detect([frames[index] for index in keys]), strict=True))
        results = []
        for start, end in itertools.pairwise(keys):
            results.append(found[start])
            for index in range(start + 1, end):
                results.append(interpolate_detections(found[start], found[end], (index - start) / (end - start)))
        results.append(found[keys[-1]])
        return results

    def settings_key(self) -> str:
        return f"sparse({self.every})/{self.detector.settings_key()}"


def wrap_detection(detector: FaceDetector, every: int = 1, cache_dir: str | Path | None = None) -> FaceDetector:
    """``detector`` behind the detection cache (when ``cache_dir`` is given) and every-Nth-frame detection.

    The cache sits inside, so a rerun finds the same key frames cached and skips the network entirely.
    """
    if cache_dir is not None:
        detector = CachedDetector(detector, cache_dir)
    return SparseDetector(detector, every) if every > 1 else detector

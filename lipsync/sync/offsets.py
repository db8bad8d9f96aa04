"""The offset search of syncnet_python (``calc_pdist`` and ``evaluate``) and what it reports.

Video window ``i`` is compared with audio windows ``i - vshift .. i + vshift`` (zero embeddings beyond
the ends). For syncnet_v2 the measure is the Euclidean distance (``pairwise_distance``, eps 1e-6):
``mdist[k]`` is its mean over windows, the AV offset is ``vshift - argmin``, LSE-D is ``min(mdist)`` and
LSE-C is ``median(mdist) - min(mdist)``. The expert SyncNet uses cosine similarity the same way, with
the best shift at the maximum.

A positive offset means the audio window of video window ``i`` is ``i - offset``: the sound comes
``offset`` frames early, so delaying the audio by ``offset`` frames puts it in sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import medfilt
from torch.nn import functional as F

from ..defaults import DEFAULT_VSHIFT
from .crops import odd_kernel

EUCLIDEAN = "euclidean"
COSINE = "cosine"


def shifted_measures(video: torch.Tensor, audio: torch.Tensor, vshift: int = DEFAULT_VSHIFT, metric: str = EUCLIDEAN) -> torch.Tensor:
    """``[windows, 2 * vshift + 1]``: column ``k`` compares video window ``i`` with audio window ``i + k - vshift``."""
    if video.ndim != 2 or video.shape != audio.shape:
        raise ValueError(f"video and audio embeddings must both be [windows, dim], got {tuple(video.shape)} and {tuple(audio.shape)}")
    if vshift < 0:
        raise ValueError("vshift must not be negative")
    video, audio = video.float(), audio.float()
    padded = F.pad(audio, (0, 0, vshift, vshift))
    windows = len(video)
    columns = []
    for shift in range(2 * vshift + 1):
        candidates = padded[shift : shift + windows]
        if metric == EUCLIDEAN:
            columns.append(F.pairwise_distance(video, candidates))
        elif metric == COSINE:
            columns.append(F.cosine_similarity(video, candidates, dim=1))
        else:
            raise ValueError(f"metric must be {EUCLIDEAN!r} or {COSINE!r}, got {metric!r}")
    return torch.stack(columns, dim=1)


@dataclass(frozen=True)
class OffsetSearch:
    """Mean measure per shift and what follows from it (frames are at the analysis rate)."""

    metric: str
    vshift: int
    mean_per_shift: tuple[float, ...]
    best_index: int
    framewise: tuple[float, ...]  # measure of each window at the best shift
    unshifted: tuple[float, ...]  # measure of each window as the clip is (shift 0)

    @property
    def offset(self) -> int:
        return self.vshift - self.best_index

    @property
    def best(self) -> float:
        """LSE-D (the minimum mean distance) for syncnet_v2; the best mean cosine for the expert."""
        return self.mean_per_shift[self.best_index]

    @property
    def median(self) -> float:
        return float(np.median(self.mean_per_shift))

    @property
    def confidence(self) -> float:
        """LSE-C (median - min distance) for syncnet_v2; best - median cosine for the expert."""
        return self.median - self.best if self.metric == EUCLIDEAN else self.best - self.median

    def framewise_confidence(self, kernel: int = 9) -> np.ndarray:
        """syncnet_python's per-window confidence: ``median(mdist) - dist`` at the best shift, median-filtered over 9."""
        values = np.asarray(self.framewise, dtype=np.float64)
        confidence = self.median - values if self.metric == EUCLIDEAN else values - self.median
        kernel = odd_kernel(kernel, len(confidence))
        return medfilt(confidence, kernel_size=kernel) if kernel > 1 else confidence


def search_offset(video: torch.Tensor, audio: torch.Tensor, vshift: int = DEFAULT_VSHIFT, metric: str = EUCLIDEAN) -> OffsetSearch:
    """Run the offset search over ``-vshift .. +vshift`` windows (see the module docstring)."""
    if len(video) == 0:
        raise ValueError("there are no windows to compare")
    measures = shifted_measures(video, audio, vshift, metric)
    mean = measures.mean(dim=0)
    best = int(torch.argmin(mean) if metric == EUCLIDEAN else torch.argmax(mean))
    return OffsetSearch(metric, vshift, tuple(mean.tolist()), best, tuple(measures[:, best].tolist()), tuple(measures[:, vshift].tolist()))

"""Shift a speech track by a SyncNet offset: delay it (silence in front) or advance it (cut its start)."""

from __future__ import annotations

import numpy as np


def shift_samples(waveform: np.ndarray, offset_frames: int, fps: float, sample_rate: int) -> np.ndarray:
    """``waveform`` ``[..., samples]`` moved later by ``offset_frames / fps`` seconds (earlier if negative).

    The length is kept: a delay pads silence in front and drops the tail, an advance drops the start and
    pads silence at the end. A positive SyncNet offset (audio early) is corrected by delaying it that much.
    """
    waveform = np.asarray(waveform)
    shift = round(offset_frames / fps * sample_rate)
    length = waveform.shape[-1]
    result = np.zeros_like(waveform)
    if shift >= length or -shift >= length:
        return result
    if shift >= 0:
        result[..., shift:] = waveform[..., : length - shift]
    else:
        result[..., : length + shift] = waveform[..., -shift:]
    return result

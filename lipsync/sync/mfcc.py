"""The MFCC of ``python_speech_features.mfcc`` with its defaults, in numpy: syncnet_v2's audio input.

25 ms rectangular frames every 10 ms (100 per second), pre-emphasis 0.97, 512-point power spectrum,
26 triangular mel filters over 0..8 kHz, log, orthonormal DCT-II, 13 coefficients, lifter 22, and the
first coefficient replaced by the log frame energy. syncnet_python feeds it 16-bit integer samples read
from a wav, so ``int16_scale`` converts float samples in -1..1 to that scale first.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.fft import dct

from ..media.audio import SAMPLE_RATE


@dataclass(frozen=True)
class MfccConfig:
    sample_rate: int = SAMPLE_RATE
    frame_seconds: float = 0.025
    step_seconds: float = 0.01
    coefficients: int = 13
    filters: int = 26
    n_fft: int = 512
    preemphasis: float = 0.97
    lifter: int = 22

    @property
    def frame_length(self) -> int:
        return _round_half_up(self.frame_seconds * self.sample_rate)

    @property
    def frame_step(self) -> int:
        return _round_half_up(self.step_seconds * self.sample_rate)


DEFAULT_MFCC = MfccConfig()


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def int16_scale(wav: np.ndarray) -> np.ndarray:
    """Float samples in -1..1 -> the integer values a 16-bit wav holds (as float64)."""
    return np.clip(np.round(np.asarray(wav, dtype=np.float64) * 32768.0), -32768, 32767)


def frame_count(samples: int, config: MfccConfig = DEFAULT_MFCC) -> int:
    """MFCC rows for ``samples`` samples: the last frame is zero-padded, as ``framesig`` does."""
    if samples <= config.frame_length:
        return 1
    return 1 + math.ceil((samples - config.frame_length) / config.frame_step)


@functools.lru_cache(maxsize=4)
def mel_filterbank(config: MfccConfig = DEFAULT_MFCC) -> np.ndarray:
    """Triangular filters ``[filters, n_fft // 2 + 1]`` on FFT bins ``floor((n_fft + 1) * hz / rate)``."""
    high_mel = 2595.0 * np.log10(1.0 + (config.sample_rate / 2) / 700.0)
    hz = 700.0 * (10.0 ** (np.linspace(0.0, high_mel, config.filters + 2) / 2595.0) - 1.0)
    edges = np.floor((config.n_fft + 1) * hz / config.sample_rate)
    bins = np.arange(config.n_fft // 2 + 1, dtype=np.float64)[None, :]
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((bins >= lower) & (bins < centre), (bins - lower) / (centre - lower), 0.0)
        falling = np.where((bins >= centre) & (bins < upper), (upper - bins) / (upper - centre), 0.0)
    return rising + falling


def mfcc(signal: np.ndarray, config: MfccConfig = DEFAULT_MFCC) -> np.ndarray:
    """MFCC ``[frames, coefficients]`` (float64) of a 1-D signal at ``config.sample_rate``."""
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError("mfcc expects a non-empty 1-D signal")
    emphasised = np.append(signal[0], signal[1:] - config.preemphasis * signal[:-1])
    count = frame_count(signal.size, config)
    padded = np.zeros((count - 1) * config.frame_step + config.frame_length)
    padded[: emphasised.size] = emphasised
    frames = np.lib.stride_tricks.sliding_window_view(padded, config.frame_length)[:: config.frame_step][:count]
    power = np.square(np.abs(np.fft.rfft(frames, config.n_fft))) / config.n_fft
    tiny = np.finfo(float).eps
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, tiny, energy)
    bands = power @ mel_filterbank(config).T
    bands = np.where(bands == 0, tiny, bands)
    cepstra = dct(np.log(bands), type=2, axis=1, norm="ortho")[:, : config.coefficients]
    if config.lifter > 0:
        cepstra = cepstra * (1.0 + (config.lifter / 2.0) * np.sin(np.pi * np.arange(config.coefficients) / config.lifter))
    cepstra[:, 0] = np.log(energy)
    return cepstra

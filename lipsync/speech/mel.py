"""The reference mel spectrogram and the per-frame mel windows the models see.

The mel follows the reference ``audio.py``/``hparams.py`` exactly, including the STFT's reflect padding
of librosa 0.7 (the version the released weights were trained with; librosa >= 0.10 pads with zeros by
default, which changes the first and last two columns). Frame ``i`` at ``fps`` reads columns
``int(i * 80 / fps) .. +16``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import MediaError
from ..media.audio import SAMPLE_RATE

MEL_WINDOW = 16  # mel columns the models see per video frame


@dataclass(frozen=True)
class MelConfig:
    """The reference hparams that shape the mel; changing any breaks the pretrained weights."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 800
    hop_size: int = 200
    win_size: int = 800
    num_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    max_abs_value: float = 4.0
    pad_mode: str = "reflect"

    @property
    def columns_per_second(self) -> float:
        return self.sample_rate / self.hop_size


DEFAULT_MEL = MelConfig()


@functools.lru_cache(maxsize=4)
def mel_basis(config: MelConfig = DEFAULT_MEL) -> np.ndarray:
    """The Slaney-normalised mel filterbank ``[num_mels, n_fft // 2 + 1]`` (float32).

    Equal to ``librosa.filters.mel(sr=..., n_fft=..., n_mels=..., fmin=..., fmax=...)`` value for value
    (a test compares them); computed here so a run does not import librosa, numba and scipy (about a
    second of start-up).
    """
    if config.fmax > config.sample_rate // 2:
        raise ValueError("fmax must not exceed the Nyquist frequency")
    fft_freqs = np.fft.rfftfreq(n=config.n_fft, d=1.0 / config.sample_rate)
    mel_range = np.linspace(_hz_to_slaney_mel(config.fmin), _hz_to_slaney_mel(config.fmax), config.num_mels + 2)
    mel_freqs = _slaney_mel_to_hz(mel_range)
    spacing = np.diff(mel_freqs)
    ramps = np.subtract.outer(mel_freqs, fft_freqs)
    weights = np.zeros((config.num_mels, 1 + config.n_fft // 2), dtype=np.float32)
    for index in range(config.num_mels):  # triangles rising from mel_freqs[i] to [i + 1], falling to [i + 2]
        rising = -ramps[index] / spacing[index]
        falling = ramps[index + 2] / spacing[index + 1]
        weights[index] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (mel_freqs[2 : config.num_mels + 2] - mel_freqs[: config.num_mels]))[:, np.newaxis]  # equal area
    return weights


# Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic (a factor 6.4 per 27 mels) above.
_MEL_HZ_STEP = 200.0 / 3
_LOG_START_HZ = 1000.0


_LOG_START_MEL = _LOG_START_HZ / _MEL_HZ_STEP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_slaney_mel(hz: float) -> float:
    if hz >= _LOG_START_HZ:
        return _LOG_START_MEL + np.log(hz / _LOG_START_HZ) / _LOG_STEP
    return hz / _MEL_HZ_STEP


def _slaney_mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = 0.0 + _MEL_HZ_STEP * mels
    above = mels >= _LOG_START_MEL
    hz[above] = _LOG_START_HZ * np.exp(_LOG_STEP * (mels[above] - _LOG_START_MEL))
    return hz


def min_samples_for_window(config: MelConfig = DEFAULT_MEL) -> int:
    """Fewest samples whose mel has one full 16-column window."""
    return (MEL_WINDOW - 1) * config.hop_size


def melspectrogram(wav: np.ndarray, config: MelConfig = DEFAULT_MEL, block_columns: int = 256) -> np.ndarray:
    """Normalised log-mel ``[num_mels, 1 + len(wav) // hop]`` in [-max_abs, max_abs], as the reference.

    Computed in blocks of ``block_columns`` so the float64/complex intermediates stay small for long
    audio; each column sees exactly the samples the one-shot reference STFT gives it.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError("melspectrogram expects a 1-D mono signal")
    if wav.size < min_samples_for_window(config):
        seconds = wav.size / config.sample_rate
        raise MediaError(f"The audio is only {seconds:.3f} s long; at least 0.19 s of speech is needed.")
    columns = 1 + wav.size // config.hop_size
    half = config.n_fft // 2
    mel = np.empty((config.num_mels, columns), dtype=np.float32)
    for first in range(0, columns, block_columns):
        last = min(columns, first + block_columns)
        segment = _padded_emphasis(wav, first * config.hop_size - half, (last - 1) * config.hop_size + half, config)
        frames = np.lib.stride_tricks.sliding_window_view(segment, config.n_fft)[:: config.hop_size]
        # librosa 0.7 stores the STFT as complex64, so the magnitude is taken at float32 precision.
        spectrum = np.fft.rfft(frames * stft_window(config), axis=1).astype(np.complex64)
        mel[:, first:last] = _normalise(mel_basis(config) @ np.abs(spectrum).T, config)
    return mel


@functools.lru_cache(maxsize=4)
def stft_window(config: MelConfig = DEFAULT_MEL) -> np.ndarray:
    """librosa's STFT window: a periodic Hann of ``win_size`` centred in ``n_fft`` (float64).

    The same arithmetic as ``scipy.signal.get_window("hann", win_size, fftbins=True)`` (a test compares
    them), without importing scipy.signal at start-up.
    """
    angles = np.linspace(-np.pi, np.pi, config.win_size + 1)
    window = (0.5 * np.cos(0 * angles) + 0.5 * np.cos(angles))[:-1]
    left = (config.n_fft - config.win_size) // 2
    return np.pad(window, (left, config.n_fft - config.win_size - left))


def _padded_emphasis(wav: np.ndarray, start: int, stop: int, config: MelConfig) -> np.ndarray:
    """Samples ``start..stop`` of the pre-emphasised signal after librosa's centring pad (float64).

    Pre-emphasis is ``y[n] = x[n] - k * x[n-1]`` (``lfilter([1, -k], [1], x)``), done here on the
    indices needed, so no whole-length float64 copy is made.
    """
    index = np.arange(start, stop)
    outside = (index < 0) | (index >= wav.size)
    if config.pad_mode == "reflect":
        index = np.where(index < 0, -index, index)
        index = np.where(index >= wav.size, 2 * (wav.size - 1) - index, index)
    elif config.pad_mode != "constant":
        raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {config.pad_mode!r}")
    clipped = np.clip(index, 0, wav.size - 1)
    current = wav[clipped].astype(np.float64)
    emphasized = current - config.preemphasis * wav[np.maximum(clipped - 1, 0)].astype(np.float64)
    emphasized[clipped == 0] = current[clipped == 0]
    if config.pad_mode == "constant":
        emphasized[outside] = 0.0
    return emphasized


def _normalise(mel: np.ndarray, config: MelConfig) -> np.ndarray:
    """Amplitude to dB (floor min_level_db, minus ref_level_db), then the symmetric clipped scaling."""
    min_level = np.exp(config.min_level_db / 20 * np.log(10))
    decibels = 20 * np.log10(np.maximum(min_level, mel)) - config.ref_level_db
    scaled = (2 * config.max_abs_value) * ((decibels - config.min_level_db) / (-config.min_level_db)) - config.max_abs_value
    return np.clip(scaled, -config.max_abs_value, config.max_abs_value)


def _full_window_count(columns: int, step: float) -> int:
    """Windows of ``MEL_WINDOW`` columns starting at ``int(i * step)`` that fit in ``columns``."""
    last_start = columns - MEL_WINDOW
    count = int(last_start / step) + 1
    while count > 0 and int((count - 1) * step) > last_start:
        count -= 1
    while int(count * step) <= last_start:
        count += 1
    return count


def window_count(samples: int, fps: float, config: MelConfig = DEFAULT_MEL) -> int:
    """``len(MelWindows(melspectrogram(wav), fps))`` for a ``samples``-long ``wav``, without computing the mel
    (so the run can start while the mel is computed on another thread)."""
    if samples < min_samples_for_window(config):
        seconds = samples / config.sample_rate
        raise MediaError(f"The audio is only {seconds:.3f} s long; at least 0.19 s of speech is needed.")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return _full_window_count(1 + samples // config.hop_size, config.columns_per_second / float(fps)) + 1


class MelWindows:
    """The 16-column mel window of each video frame, sliced lazily (no ``[N, 80, 16]`` copy).

    Frame ``i`` at ``fps`` gets columns ``int(i * 80 / fps) .. +16``; the reference stops at the first
    window that would overrun and clamps that one to the last 16 columns.
    """

    def __init__(self, mel: np.ndarray, fps: float, config: MelConfig = DEFAULT_MEL) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if mel.ndim != 2 or mel.shape[1] < MEL_WINDOW:
            raise MediaError(f"The mel has {mel.shape[-1]} columns; at least {MEL_WINDOW} are needed.")
        self.mel = mel
        self.fps = float(fps)
        self.step = config.columns_per_second / self.fps
        self.full_windows = _full_window_count(mel.shape[1], self.step)

    def __len__(self) -> int:
        return self.full_windows + 1

    def start(self, index: int) -> int:
        """First mel column of frame ``index``'s window."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index < self.full_windows:
            return int(index * self.step)
        return self.mel.shape[1] - MEL_WINDOW

    def window(self, index: int) -> np.ndarray:
        start = self.start(index)
        return self.mel[:, start : start + MEL_WINDOW]

    def batch(self, indices: range | list[int]) -> np.ndarray:
        """Windows of ``indices`` stacked as ``[n, num_mels, 16]`` float32."""
        return np.stack([self.window(index) for index in indices]).astype(np.float32, copy=False)

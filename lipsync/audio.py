"""Audio for Wav2Lip: decode any format to 16 kHz mono, the reference mel spectrogram, per-frame windows.

The mel follows the reference ``audio.py``/``hparams.py`` exactly, including the STFT's reflect padding
of librosa 0.7 (the version the released weights were trained with; librosa >= 0.10 pads with zeros by
default, which changes the first and last two columns).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import MediaError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
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


def decode_audio(path: str | Path, mono: bool = False) -> tuple[np.ndarray, int]:
    """Decode the first audio track of any file PyAV reads (wav, mp3, flac, m4a, a video's track).

    Returns float32 samples ``[channels, samples]`` (one channel if ``mono``, the channel mean) and
    the native sample rate.
    """
    import av

    path = Path(path)
    if path.is_dir():
        raise MediaError(f"Audio file '{path}' is a folder, not a file. Pass a wav, mp3, flac, m4a or a video with sound.")
    if not path.is_file():
        raise MediaError(f"Audio file '{path}' does not exist. Check the path.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"Cannot open '{path}' as audio: {exc}. Use wav, mp3, flac, m4a or a video with sound.") from exc
    with container:
        if not container.streams.audio:
            raise MediaError(f"'{path}' has no audio track. Pass a file with speech in it.")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        sample_rate = stream.codec_context.sample_rate
        try:
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    sample_rate = converted.sample_rate
                    chunks.append(_frame_samples(converted, mono))
            for converted in resampler.resample(None):
                chunks.append(_frame_samples(converted, mono))
        except av.error.FFmpegError as exc:
            raise MediaError(f"Cannot decode the audio of '{path}': {exc}. The file may be damaged.") from exc
        declared = _declared_seconds(path, stream)
    decoded = sum(chunk.shape[1] for chunk in chunks)
    if not chunks or decoded == 0:
        raise MediaError(f"The audio track of '{path}' is empty.")
    if declared is not None and decoded / sample_rate < declared * 0.98 - 0.02:
        logger.warning(
            "'%s' ends early: its header announces %.2f s of audio but only %.2f s could be read; the file looks truncated "
            "(the output uses what is there)",
            path,
            declared,
            decoded / sample_rate,
        )
    return np.concatenate(chunks, axis=1), int(sample_rate)


def _declared_seconds(path: Path, stream: object) -> float | None:
    """How long the file says its audio is: a WAV's data chunk size (ffmpeg infers a WAV's duration from the
    file size, which hides a cut-off file), else the container's stream duration; ``None`` when unknown."""
    wav = _wav_data_seconds(path)
    if wav is not None:
        return wav
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _wav_data_seconds(path: Path) -> float | None:
    with open(path, "rb") as handle:
        header = handle.read(1 << 16)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    position, byte_rate = 12, 0
    while position + 8 <= len(header):
        chunk, size = header[position : position + 4], int.from_bytes(header[position + 4 : position + 8], "little")
        if chunk == b"fmt " and position + 16 <= len(header):
            byte_rate = int.from_bytes(header[position + 16 : position + 20], "little")
        if chunk == b"data":
            # 0 and 0xFFFFFFFF mark a streamed WAV whose length was never filled in
            return size / byte_rate if byte_rate and 0 < size < 0xFFFFFFFF else None
        position += 8 + size + (size & 1)
    return None


def _frame_samples(frame: object, mono: bool) -> np.ndarray:
    samples = frame.to_ndarray().astype(np.float32, copy=False)  # [channels, n] for planar float
    return samples.mean(axis=0, keepdims=True) if mono else samples


def to_model_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix ``[channels, samples]`` (or 1-D) to mono and resample to 16 kHz as ``librosa.load`` does.

    Non-finite samples (seen in some TTS output) become silence instead of poisoning the mel with NaN.
    """
    wav = np.asarray(samples, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=0)
    if wav.ndim != 1 or wav.size == 0:
        raise MediaError("Audio must be a non-empty [channels, samples] array.")
    if not np.isfinite(wav).all():
        logger.warning("audio holds %d non-finite samples; treating them as silence", int((~np.isfinite(wav)).sum()))
        wav = np.nan_to_num(wav, nan=0.0, posinf=0.0, neginf=0.0)
    if sample_rate != SAMPLE_RATE:
        wav = resample_to_model_rate(wav, sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def resample_to_model_rate(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """``librosa.resample(wav, orig_sr=sample_rate, target_sr=16000, res_type="soxr_hq")``, called on soxr
    directly (the same calls, equal to the sample), so a run does not import librosa, numba and scipy."""
    import soxr

    length = int(np.ceil(wav.shape[-1] * float(SAMPLE_RATE) / sample_rate))
    resampled = soxr.resample(wav, sample_rate, SAMPLE_RATE, quality="soxr_hq")
    resampled = resampled[:length] if resampled.shape[-1] >= length else np.pad(resampled, (0, length - resampled.shape[-1]))
    return np.asarray(resampled, dtype=wav.dtype)


@dataclass(frozen=True, eq=False)
class AudioSamples:
    """Speech already in memory (ComfyUI's AUDIO), usable wherever a speech file is: float32 ``[channels, samples]``."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[1] == 0:
            raise MediaError(f"Audio must be a non-empty [channels, samples] array, got shape {self.samples.shape}.")
        if self.sample_rate <= 0:
            raise MediaError(f"Audio sample rate must be positive, got {self.sample_rate}.")

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    def resampled(self, rate: int, layout: str, block: int = 1 << 16) -> Iterator[np.ndarray]:
        """float32 planar ``[channels, n]`` chunks at ``rate`` and ``layout`` (``mono``/``stereo``), as a decoder would give.

        More than two channels are mixed down to mono first (speech).
        """
        import av

        samples = self.samples if self.channels <= 2 else self.samples.mean(axis=0, keepdims=True)
        source_layout = "mono" if samples.shape[0] == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        for start in range(0, samples.shape[1], block):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + block], dtype=np.float32), format="fltp", layout=source_layout
            )
            frame.sample_rate = self.sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, self.sample_rate)
            for converted in resampler.resample(frame):
                yield converted.to_ndarray()
        for converted in resampler.resample(None):
            yield converted.to_ndarray()


AudioSource = str | Path | AudioSamples  # a file PyAV can read, or samples in memory


def load_audio(source: AudioSource) -> np.ndarray:
    """Decode a file (or take samples in memory) as the 16 kHz mono float32 signal the models expect."""
    if isinstance(source, AudioSamples):
        return to_model_rate(source.samples, source.sample_rate)
    samples, sample_rate = decode_audio(source, mono=True)
    return to_model_rate(samples, sample_rate)


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

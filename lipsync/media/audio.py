"""Speech input: decode any audio (a file PyAV reads, or samples in memory) to the 16 kHz mono float32 the models use.

Resampling calls soxr directly with librosa's ``soxr_hq`` settings, so a run never imports librosa.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import MediaError

logger = logging.getLogger(__name__)
SAMPLE_RATE = 16000


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

"""Audio decoding, the reference mel spectrogram and per-frame mel windows."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from helpers import speechlike, write_audio

from lipsync.errors import MediaError
from lipsync.media.audio import decode_audio, load_audio, to_model_rate
from lipsync.speech.mel import MEL_WINDOW, MelConfig, MelWindows, melspectrogram


def golden_signal() -> np.ndarray:
    """0.5 s: a 440 Hz tone, a rising chirp and a click train, all deterministic."""
    t = np.arange(8000) / 16000
    chirp = np.sin(2 * np.pi * (300 + 3000 * t) * t)
    clicks = (np.arange(8000) % 1600 == 0).astype(np.float64)
    return (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * chirp * t + 0.3 * clicks).astype(np.float32)


def independent_mel(wav: np.ndarray) -> np.ndarray:
    """The reference audio.py written out with numpy: pre-emphasis, reflect-padded periodic-Hann STFT,
    Slaney mel, dB with min_level -100 and ref_level 20, symmetric clip to [-4, 4]."""
    wav = wav.astype(np.float64)
    emphasized = np.concatenate([wav[:1], wav[1:] - 0.97 * wav[:-1]])
    padded = np.pad(emphasized, 400, mode="reflect")
    count = 1 + len(emphasized) // 200
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 800)
    frames = np.stack([padded[i * 200 : i * 200 + 800] for i in range(count)])
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)).T
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    decibels = 20 * np.log10(np.maximum(1e-5, basis @ magnitude)) - 20
    return np.clip(8 * (decibels + 100) / 100 - 4, -4, 4)


# Values of the reference mel of golden_signal(), pinned so a change in any dependency shows up.
GOLDEN = {(0, 0): -1.091069, (10, 5): 1.834738, (40, 20): 0.686852, (79, 39): -1.846477, (5, 40): 0.054499}


def test_mel_matches_independent_reference_and_golden_values() -> None:
    wav = golden_signal()
    mel = melspectrogram(wav)
    assert mel.shape == (80, 41) and mel.dtype == np.float32
    assert np.abs(mel - independent_mel(wav)).max() < 1e-4
    for (band, column), value in GOLDEN.items():
        assert mel[band, column] == pytest.approx(value, abs=1e-4)


def test_blocked_computation_equals_one_block() -> None:
    wav = speechlike(3.0)
    whole = melspectrogram(wav, block_columns=10**6)
    # Equal up to float32 rounding of differently batched FFT/matmul calls.
    assert np.abs(melspectrogram(wav, block_columns=7) - whole).max() < 1e-6
    zero_padded = MelConfig(pad_mode="constant")
    assert np.abs(melspectrogram(wav, zero_padded, block_columns=5) - melspectrogram(wav, zero_padded, block_columns=10**6)).max() < 1e-6


def test_reflect_padding_differs_from_zero_padding_only_at_the_edges() -> None:
    wav = golden_signal()
    reflect = melspectrogram(wav)
    zeros = melspectrogram(wav, MelConfig(pad_mode="constant"))
    interior = slice(2, -2)
    assert np.array_equal(reflect[:, interior], zeros[:, interior])
    assert np.abs(reflect[:, :2] - zeros[:, :2]).max() > 0.05


@pytest.mark.parametrize("signal", [np.zeros(16000, np.float32), np.full(16000, np.nan, np.float32)])
def test_silence_and_nan_give_finite_floor(signal: np.ndarray) -> None:
    mel = melspectrogram(to_model_rate(signal, 16000))
    assert np.isfinite(mel).all()
    assert np.all(mel == -4.0)


def test_too_short_audio_is_a_clear_error() -> None:
    with pytest.raises(MediaError, match=r"at least 0\.19 s"):
        melspectrogram(np.zeros(1000, np.float32))


def reference_window_count(columns: int, fps: float) -> int:
    """The reference inference.py loop, verbatim in behaviour."""
    count, index = 0, 0
    while True:
        count += 1
        if int(index * (80.0 / fps)) + MEL_WINDOW > columns:
            return count
        index += 1


@pytest.mark.parametrize("fps", [1.0, 7.3, 23.976, 24, 25, 29.97, 30, 50, 59.94, 60])
@pytest.mark.parametrize("columns", [16, 17, 95, 333, 2001])
def test_window_count_and_starts_match_reference_loop(fps: float, columns: int) -> None:
    mel = np.arange(80 * columns, dtype=np.float32).reshape(80, columns)
    windows = MelWindows(mel, fps)
    assert len(windows) == reference_window_count(columns, fps)
    for index in range(len(windows) - 1):
        assert windows.start(index) == int(index * 80.0 / fps)
    last = windows.window(len(windows) - 1)
    assert np.array_equal(last, mel[:, -MEL_WINDOW:])
    assert windows.batch(range(len(windows))).shape == (len(windows), 80, MEL_WINDOW)


def test_windows_reject_bad_input() -> None:
    with pytest.raises(ValueError):
        MelWindows(np.zeros((80, 40), np.float32), 0)
    with pytest.raises(MediaError):
        MelWindows(np.zeros((80, 10), np.float32), 25)
    with pytest.raises(IndexError):
        MelWindows(np.zeros((80, 40), np.float32), 25).start(99)


@pytest.mark.parametrize(
    ("codec", "suffix", "level_tolerance"),
    [("pcm_s16le", ".wav", 0.01), ("flac", ".flac", 0.01), ("libmp3lame", ".mp3", 0.1), ("aac", ".m4a", 0.1)],
)
def test_decode_formats_rates_and_channels(tmp_path, codec: str, suffix: str, level_tolerance: float) -> None:
    mono = speechlike(1.0, 44100)
    stereo = np.stack([mono, -mono * 0.5])
    path = write_audio(tmp_path / f"speech{suffix}", stereo, 44100, codec)
    samples, rate = decode_audio(path)
    assert rate == 44100 and samples.shape[0] == 2
    assert abs(samples.shape[1] - 44100) < 3000  # codec priming/padding
    wav = load_audio(path)
    assert wav.dtype == np.float32 and abs(wav.size - 16000) < 1200
    # The mono mix of (x, -x/2) is x/4: check the level survived decoding and resampling.
    reference = librosa.resample(mono / 4, orig_sr=44100, target_sr=16000)
    assert np.sqrt(np.mean(wav**2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=level_tolerance)


def test_wav_at_16k_decodes_exactly_like_librosa(example_speech) -> None:
    ours = load_audio(example_speech)
    theirs, _ = librosa.load(example_speech, sr=16000)
    assert np.array_equal(ours, theirs)


def test_video_audio_track_and_errors(tmp_path, example_video) -> None:
    samples, rate = decode_audio(example_video)
    assert rate == 44100 and samples.shape[0] == 1 and samples.shape[1] > 5 * 44100
    with pytest.raises(MediaError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"not audio at all" * 100)
    with pytest.raises(MediaError):
        load_audio(garbage)


MEL_CONFIGS = [MelConfig(), MelConfig(sample_rate=22050, n_fft=1024, win_size=1024, num_mels=128, fmin=0.0, fmax=8000.0),
               MelConfig(n_fft=512, win_size=400, num_mels=40, fmin=0.0, fmax=8000.0)]  # fmt: skip


@pytest.mark.parametrize("config", MEL_CONFIGS)
def test_mel_basis_and_window_equal_librosa_and_scipy(config: MelConfig) -> None:
    """Computed without importing librosa or scipy.signal (start-up time), equal to what they give, value for value."""
    from scipy.signal import get_window

    from lipsync.speech.mel import mel_basis, stft_window

    theirs = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.num_mels, fmin=config.fmin, fmax=config.fmax)
    ours = mel_basis(config)
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)
    left = (config.n_fft - config.win_size) // 2
    window = stft_window(config)
    np.testing.assert_array_equal(window[left : left + config.win_size], get_window("hann", config.win_size, fftbins=True))
    assert window.shape == (config.n_fft,) and not window[:left].any() and not window[left + config.win_size :].any()


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_resampling_equals_librosa_soxr_hq(rate: int) -> None:
    from lipsync.media.audio import resample_to_model_rate

    signal = speechlike(1.3, rate, seed=rate)[: int(1.3 * rate) - 7]
    theirs = librosa.resample(signal, orig_sr=rate, target_sr=16000, res_type="soxr_hq")
    ours = resample_to_model_rate(signal, rate)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


def test_a_plain_mel_does_not_import_librosa_scipy_signal_or_numba() -> None:
    """Start-up: decoding 16 kHz audio and its mel must not pull in the heavy packages (checked in a fresh interpreter)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, numpy as np\n"
        "from lipsync.media.audio import to_model_rate\nfrom lipsync.speech.mel import melspectrogram\n"
        "melspectrogram(to_model_rate(np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1, 44100))\n"
        "print(sorted(name for name in ('librosa', 'scipy.signal', 'numba') if name in sys.modules))\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0, 24.0, 60.0, 12.5, 7.0])
def test_window_count_without_the_mel_equals_the_windows_of_the_mel(fps: float) -> None:
    """The run learns its length from the sample count and computes the mel on a thread: the counts must agree."""
    from lipsync.speech.mel import min_samples_for_window, window_count

    for samples in (3000, 3001, 3199, 3200, 8000, 16000, 16001, 40123, 85333):
        wav = speechlike(samples / 16000, seed=samples)[:samples]
        assert wav.size == samples
        assert window_count(samples, fps) == len(MelWindows(melspectrogram(wav), fps)), (samples, fps)
    with pytest.raises(MediaError, match=r"at least 0\.19 s"):
        window_count(min_samples_for_window() - 1, fps)

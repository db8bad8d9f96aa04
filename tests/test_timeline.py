"""The one length model: the four length modes as a str Enum, the output length, each output frame's source frame,
and the speech windows of every output frame."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import FlatMouth, speechlike, write_audio, write_video

import lipsync.speech.timeline as timeline
from lipsync.media.audio import load_audio
from lipsync.media.read import iter_video_frames
from lipsync.pipeline import LipSyncOptions, lipsync_file
from lipsync.render.generate import Wav2LipGenerator
from lipsync.speech.mel import MelWindows, melspectrogram, window_count
from lipsync.speech.timeline import (
    FIT_AUDIO,
    LENGTH_MODES,
    LOOP,
    PING_PONG,
    TRIM,
    LengthMode,
    SpeechWindows,
    output_frame_count,
    source_frame,
)


def test_modes_are_a_str_enum_with_the_saved_words() -> None:
    # Saved workflows and --length-mode use these words; they must keep working.
    assert LENGTH_MODES == ("loop video", "ping-pong video", "trim to shorter", "fit audio to video")
    assert all(isinstance(mode, str) for mode in LengthMode)
    assert LengthMode("ping-pong video") is PING_PONG and PING_PONG == "ping-pong video"
    assert f"{TRIM}" == str(TRIM) == "trim to shorter" and json.dumps({"mode": FIT_AUDIO}) == '{"mode": "fit audio to video"}'
    assert [mode.repeats_video for mode in LengthMode] == [True, True, False, False]
    assert LipSyncOptions(length_mode="trim to shorter").length_mode is TRIM
    with pytest.raises(ValueError, match="length mode must be one of"):
        output_frame_count(10, 5, "stretch")


@pytest.mark.parametrize(
    ("mode", "speech_longer", "video_longer", "unknown_video"),
    [(LOOP, 20, 8, 20), (PING_PONG, 20, 8, 20), (TRIM, 6, 8, 20), (FIT_AUDIO, 6, 30, 20)],
)
def test_output_length_of_each_mode(mode, speech_longer, video_longer, unknown_video) -> None:
    assert output_frame_count(20, 6, mode) == speech_longer  # 20 speech windows, 6 video frames
    assert output_frame_count(8, 30, mode) == video_longer  # 8 speech windows, 30 video frames
    assert output_frame_count(20, 0, mode) == unknown_video  # video length unknown: the speech decides


def test_source_frame_of_each_mode() -> None:
    def sources(mode: str) -> list[int]:
        return [source_frame(index, 4, mode) for index in range(11)]

    assert sources(LOOP) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]
    assert sources("ping-pong video") == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert sources(TRIM) == sources(FIT_AUDIO) == [0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3]
    assert [source_frame(index, 1, PING_PONG) for index in range(3)] == [0, 0, 0]


def test_speech_windows_build_their_mel_windows_once(monkeypatch) -> None:
    mel = melspectrogram(speechlike(1.0))
    built = []

    class Counting(MelWindows):
        def __init__(self, *args, **kwargs) -> None:
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(timeline, "MelWindows", Counting)
    speech = SpeechWindows(mel, 25.0, 40, 40, "fit audio to video")
    assert speech.mode is FIT_AUDIO
    reference = MelWindows(mel, 25.0)  # the real class, outside the patched module
    first, second = speech.batch(range(0, 5)), speech.batch([3, 30, 39])
    # 1 s: 81 mel columns; windows start at int(3.2 i) <= 65 for i = 0..20, plus the clamped last one: 22.
    assert speech.audio_windows == len(reference) == 22 and len(built) == 1
    np.testing.assert_array_equal(first, reference.batch(range(0, 5)))
    np.testing.assert_array_equal(second[0], reference.window(3))
    assert second.shape == (3, 80, 16) and np.all(second[1:] == timeline.SILENCE_LEVEL)  # past the speech: silence


@pytest.mark.parametrize(("mode", "frames"), [(PING_PONG, 10), (FIT_AUDIO, 5), (TRIM, 5)])
def test_command_line_run_takes_its_length_from_the_timeline(tmp_path, mode, frames) -> None:
    """A 5-frame video and 0.5 s of speech at 25 fps: the run's length is the timeline's, for each mode."""
    video_frames = [np.full((48, 64, 3), 40 * index, np.uint8) for index in range(5)]
    video = write_video(tmp_path / "five.mp4", video_frames)
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.5), 16000)
    windows = window_count(load_audio(speech).size, 25.0)
    # 8000 samples, hop 200: 41 mel columns; a frame every 3.2 columns; windows of 16 start at int(3.2 i) <= 25 for
    # i = 0..8 (9 windows), then the reference's last window clamped to the end: 10.
    assert windows == 10
    options = LipSyncOptions(box=(8, 40, 8, 56), length_mode=mode)
    report = lipsync_file(video, speech, tmp_path / "out.mp4", Wav2LipGenerator(FlatMouth()), None, options)
    assert report.frames == output_frame_count(windows, 5, mode) == frames
    written = list(iter_video_frames(tmp_path / "out.mp4"))
    assert len(written) == frames
    levels = [round(float(frame[:4, :4].mean()) / 40) for frame in written]
    assert levels == [source_frame(index, 5, mode) for index in range(frames)]

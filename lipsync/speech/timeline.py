"""Matching speech length to video length: which source frame and which mel window each output frame uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..choices import Choice
from .mel import MEL_WINDOW, MelWindows


class LengthMode(Choice):
    """How the lengths of speech and video are matched. The values are the words saved in workflows and given to
    ``--length-mode``, so plain strings work wherever a mode is expected."""

    LOOP = "loop video"  # the speech sets the length; a shorter video loops (the reference)
    PING_PONG = "ping-pong video"  # the speech sets the length; a shorter video plays forwards, backwards, ...
    TRIM = "trim to shorter"  # whichever ends first ends the output
    FIT_AUDIO = "fit audio to video"  # the video sets the length; the speech is cut or padded with silence

    @property
    def repeats_video(self) -> bool:
        """Whether source frames are shown again once the video has run out."""
        return self in (LengthMode.LOOP, LengthMode.PING_PONG)


LOOP, PING_PONG, TRIM, FIT_AUDIO = LengthMode
LENGTH_MODES = LengthMode.words()  # the choices, as plain strings (widgets, argparse)

SILENCE_LEVEL = -4.0  # the normalised mel of silence


def output_frame_count(audio_windows: int, video_frames: int, mode: str) -> int:
    """Frames in the result: the speech's length when the video is repeated (or its length is unknown: 0), else as
    the mode says."""
    mode = LengthMode.of(mode)
    if video_frames <= 0 or mode.repeats_video:
        return audio_windows
    if mode == TRIM:
        return min(audio_windows, video_frames)
    return video_frames


def source_frame(index: int, video_frames: int, mode: str) -> int:
    """The source frame of output frame ``index``: looping (the reference), ping-pong, or frozen on the last."""
    mode = LengthMode.of(mode)
    if video_frames <= 1:
        return 0
    if mode == PING_PONG:
        period = 2 * (video_frames - 1)
        phase = index % period
        return phase if phase < video_frames else period - phase
    if mode == LOOP:
        return index % video_frames
    return min(index, video_frames - 1)


@dataclass(frozen=True, eq=False)
class SpeechWindows:
    """The mel windows of every output frame, with the length matching that produced them.

    ``mel`` is read-only. Frames past the end of the speech (``fit audio to video`` with short audio)
    get silence.
    """

    mel: np.ndarray
    fps: float
    count: int
    video_frames: int
    mode: LengthMode

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", LengthMode.of(self.mode))
        self.mel.setflags(write=False)
        if self.count < 1:
            raise ValueError("there are no output frames")

    @classmethod
    def match(cls, mel: np.ndarray, fps: float, video_frames: int, mode: str) -> SpeechWindows:
        """Windows for ``video_frames`` source frames (0: unknown, the speech decides) under ``mode``."""
        windows = MelWindows(mel, fps)
        return cls(mel, float(fps), output_frame_count(len(windows), video_frames, mode), video_frames, mode)

    @cached_property
    def windows(self) -> MelWindows:
        """The speech's own windows (built once; ``batch`` slices them)."""
        return MelWindows(self.mel, self.fps)

    @property
    def audio_windows(self) -> int:
        return len(self.windows)

    def source_frame(self, index: int) -> int:
        return source_frame(index, self.video_frames, self.mode) if self.video_frames else index

    def batch(self, indices: range | list[int]) -> np.ndarray:
        """Mel windows ``[n, 80, 16]`` of output frames ``indices``; past the end of the speech, silence."""
        windows = self.windows
        silence = np.full((self.mel.shape[0], MEL_WINDOW), SILENCE_LEVEL, dtype=np.float32)
        return np.stack([windows.window(index) if index < len(windows) else silence for index in indices]).astype(np.float32, copy=False)

    @property
    def seconds(self) -> float:
        return self.count / self.fps

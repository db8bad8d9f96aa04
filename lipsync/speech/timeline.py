"""Matching speech length to video length: which source frame and which mel window each output frame uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mel import MEL_WINDOW, MelWindows

LOOP = "loop video"
PING_PONG = "ping-pong video"
TRIM = "trim to shorter"
FIT_AUDIO = "fit audio to video"
LENGTH_MODES = (LOOP, PING_PONG, TRIM, FIT_AUDIO)

SILENCE_LEVEL = -4.0  # the normalised mel of silence


def output_frame_count(audio_windows: int, video_frames: int, mode: str) -> int:
    """Frames in the result: the speech's length when the video is repeated, else as the mode says."""
    if mode not in LENGTH_MODES:
        raise ValueError(f"length mode must be one of {LENGTH_MODES}, got {mode!r}")
    if video_frames <= 0 or mode in (LOOP, PING_PONG):
        return audio_windows
    if mode == TRIM:
        return min(audio_windows, video_frames)
    return video_frames


def source_frame(index: int, video_frames: int, mode: str) -> int:
    """The source frame of output frame ``index``: looping (the reference), ping-pong, or frozen on the last."""
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
    mode: str

    def __post_init__(self) -> None:
        self.mel.setflags(write=False)
        if self.count < 1:
            raise ValueError("there are no output frames")

    @classmethod
    def match(cls, mel: np.ndarray, fps: float, video_frames: int, mode: str) -> SpeechWindows:
        """Windows for ``video_frames`` source frames (0: unknown, the speech decides) under ``mode``."""
        windows = MelWindows(mel, fps)
        return cls(mel, float(fps), output_frame_count(len(windows), video_frames, mode), video_frames, mode)

    @property
    def audio_windows(self) -> int:
        return len(MelWindows(self.mel, self.fps))

    def source_frame(self, index: int) -> int:
        return source_frame(index, self.video_frames, self.mode) if self.video_frames else index

    def batch(self, indices: range | list[int]) -> np.ndarray:
        """Mel windows ``[n, 80, 16]`` of output frames ``indices``."""
        windows = MelWindows(self.mel, self.fps)
        silence = np.full((self.mel.shape[0], MEL_WINDOW), SILENCE_LEVEL, dtype=np.float32)
        return np.stack([windows.window(index) if index < len(windows) else silence for index in indices]).astype(np.float32, copy=False)

    @property
    def seconds(self) -> float:
        return self.count / self.fps

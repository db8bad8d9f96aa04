"""Training samples from a preprocessed folder (see ``preprocess.py``): SyncNet pairs and Wav2Lip windows.

A window is 5 consecutive face crops; its mel is the 16 columns from ``int(80 * frame / 25)``, as the
reference ``crop_audio_window``. Crops are read as OpenCV BGR, the colour order the models train on.
Items are fetched by ``(epoch, index)`` keys and every random choice is a function of
``(seed, epoch, index)``, so runs repeat exactly, also when resumed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import LipSyncError
from ..speech.mel import MEL_WINDOW
from .preprocess import FPS, MARKER, MEL_FILE

logger = logging.getLogger(__name__)

SYNC_FRAMES = 5
# The reference trains the generator with the mel of frame i - 1 for frame i (its get_segmented_mels);
# kept so fine-tuning the published weights sees what they were trained on.
GENERATOR_MEL_OFFSET = -1
# Negative SyncNet pairs are shifted by at least one window where the clip allows (the reference takes any other frame).
MIN_NEGATIVE_SHIFT = SYNC_FRAMES


class DataFolderError(LipSyncError):
    """The training data folder is missing, empty or not in the preprocessed layout."""


def mel_start(frame: int) -> int:
    """First mel column of ``frame`` at 25 fps (the reference formula, kept bit-exact)."""
    return int(80.0 * (frame / float(FPS)))


@dataclass(frozen=True)
class Clip:
    """One preprocessed clip: its folder, the frame numbers that have a crop, and its mel ``[80, T]``."""

    path: Path
    frames: frozenset[int]
    mel: np.ndarray

    def image(self, frame: int, size: int) -> np.ndarray:
        """Crop ``frame`` as BGR uint8 resized to ``size`` x ``size``."""
        path = self.path / f"{frame}.jpg"
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataFolderError(f"Cannot read the face crop '{path}'. Delete '{self.path}' and run preprocess again.")
        if image.shape[:2] != (size, size):
            image = cv2.resize(image, (size, size))
        return image

    def window(self, start: int, size: int) -> np.ndarray:
        """5 crops from ``start`` as float32 ``[3, 5, size, size]`` BGR in 0..1."""
        images = np.stack([self.image(frame, size) for frame in range(start, start + SYNC_FRAMES)])
        return images.transpose(3, 0, 1, 2).astype(np.float32) / 255.0

    def mel_window(self, frame: int) -> np.ndarray | None:
        """The 16-column mel of ``frame`` ``[80, 16]``, or ``None`` where the audio ends first."""
        start = mel_start(frame)
        if frame < 0 or start + MEL_WINDOW > self.mel.shape[1]:
            return None
        return np.array(self.mel[:, start : start + MEL_WINDOW], dtype=np.float32)  # a writable copy

    def has_window(self, start: int) -> bool:
        return all(frame in self.frames for frame in range(start, start + SYNC_FRAMES))


def load_clips(data_dir: str | Path) -> list[Clip]:
    """Every finished clip (a folder with ``done.json``) under ``data_dir``; raises ``DataFolderError`` if none."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataFolderError(
            f"The data folder '{data_dir}' does not exist. Run `python -m lipsync.train preprocess VIDEOS_DIR {data_dir}` first."
        )
    clips = [_load_clip(marker.parent) for marker in sorted(data_dir.rglob(MARKER))]
    if not clips:
        raise DataFolderError(
            f"'{data_dir}' holds no preprocessed clips (folders with {MARKER}, numbered .jpg crops and {MEL_FILE}). "
            f"Run `python -m lipsync.train preprocess VIDEOS_DIR {data_dir}` first."
        )
    return clips


def _load_clip(path: Path) -> Clip:
    fix = f"Delete '{path}' and run preprocess again."
    try:
        json.loads((path / MARKER).read_text())
        mel = np.load(path / MEL_FILE, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataFolderError(f"The clip '{path}' is malformed ({error}). {fix}") from error
    if mel.ndim != 2 or mel.shape[0] != 80 or not np.issubdtype(mel.dtype, np.floating):
        raise DataFolderError(f"'{path / MEL_FILE}' is not an [80, columns] float mel (shape {mel.shape}, {mel.dtype}). {fix}")
    frames = frozenset(int(image.stem) for image in path.glob("*.jpg") if image.stem.isdigit())
    if not frames:
        raise DataFolderError(f"The clip '{path}' has no numbered .jpg face crops. {fix}")
    return Clip(path, frames, mel)


def split_clips(clips: list[Clip], val_fraction: float) -> tuple[list[Clip], list[Clip]]:
    """Hold out the last ``val_fraction`` of clips (by path) for evaluation; one clip is shared with a warning."""
    if len(clips) < 2:
        logger.warning("only one clip: the evaluation loss is measured on the training clip")
        return clips, clips
    held_out = min(len(clips) - 1, max(1, round(len(clips) * val_fraction)))
    return clips[:-held_out], clips[-held_out:]


class WindowDataset(Dataset):
    """Base: indexes every usable 5-frame window of ``clips`` and derives a random generator per sample."""

    def __init__(self, clips: list[Clip], img_size: int, seed: int = 0) -> None:
        self.clips = clips
        self.img_size = img_size
        self.seed = seed
        self.windows = [(index, start) for index, clip in enumerate(clips) for start in sorted(clip.frames) if self.usable(clip, start)]
        self.starts = [[start for index, start in self.windows if index == clip_index] for clip_index in range(len(clips))]
        if not self.windows:
            raise DataFolderError(
                f"No clip under '{clips[0].path.parent}' has {SYNC_FRAMES} consecutive face frames with audio "
                f"(need at least {SYNC_FRAMES + 1} frames, about a quarter of a second). Add longer clips."
            )

    def usable(self, clip: Clip, start: int) -> bool:
        return clip.has_window(start) and clip.mel_window(start) is not None

    def __len__(self) -> int:
        return len(self.windows)

    def sample(self, key: int | tuple[int, int]) -> tuple[int, int, np.random.Generator]:
        """``(clip index, window start, generator)`` of an ``index`` or ``(epoch, index)`` key."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        clip_index, start = self.windows[index]
        return clip_index, start, np.random.default_rng((self.seed, epoch, index))

    def other_start(self, clip_index: int, start: int, rng: np.random.Generator, min_shift: int = 1) -> int:
        """Another window start of the same clip, at least ``min_shift`` frames away when there is one."""
        candidates = [other for other in self.starts[clip_index] if abs(other - start) >= min_shift]
        if not candidates:
            candidates = [other for other in self.starts[clip_index] if other != start] or [start]
        return int(candidates[rng.integers(len(candidates))])


class SyncNetDataset(WindowDataset):
    """``(faces [15, S/2, S], mel [1, 80, 16], label [1])``: the lower halves of 5 frames stacked on
    channels; label 1 when the mel is the frames' own, 0 when the frames come from a shifted window."""

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        clip_index, start, rng = self.sample(key)
        clip = self.clips[clip_index]
        in_sync = bool(rng.integers(2))
        frames_from = start if in_sync else self.other_start(clip_index, start, rng, MIN_NEGATIVE_SHIFT)
        window = clip.window(frames_from, self.img_size)  # [3, 5, S, S]
        faces = window[:, :, self.img_size // 2 :].transpose(1, 0, 2, 3).reshape(3 * SYNC_FRAMES, self.img_size // 2, self.img_size)
        mel = clip.mel_window(start)
        return torch.from_numpy(np.ascontiguousarray(faces)), torch.from_numpy(mel)[None], torch.tensor([float(in_sync)])


class Wav2LipDataset(WindowDataset):
    """``(inputs [6, 5, S, S], frame_mels [5, 1, 80, 16], window_mel [1, 80, 16], target [3, 5, S, S])``.

    Inputs are the target window with its lower half zeroed, then a reference window from elsewhere in
    the clip (identity, not pose of the mouth); ``window_mel`` is what the expert SyncNet judges.
    """

    def usable(self, clip: Clip, start: int) -> bool:
        if not super().usable(clip, start):
            return False
        first, last = start + GENERATOR_MEL_OFFSET, start + SYNC_FRAMES - 1 + GENERATOR_MEL_OFFSET
        return clip.mel_window(first) is not None and clip.mel_window(last) is not None

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        clip_index, start, rng = self.sample(key)
        clip = self.clips[clip_index]
        target = clip.window(start, self.img_size)
        reference = clip.window(self.other_start(clip_index, start, rng), self.img_size)
        masked = target.copy()
        masked[:, :, self.img_size // 2 :] = 0.0
        inputs = np.concatenate([masked, reference], axis=0)
        frame_mels = np.stack([clip.mel_window(frame + GENERATOR_MEL_OFFSET) for frame in range(start, start + SYNC_FRAMES)])
        return (
            torch.from_numpy(inputs),
            torch.from_numpy(frame_mels)[:, None],
            torch.from_numpy(clip.mel_window(start))[None],
            torch.from_numpy(target),
        )

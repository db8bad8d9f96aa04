"""Turn a folder of talking-head videos into training data: per clip, numbered face crops, audio, mel.

Layout (the reference ``preprocess.py``'s, plus the mel and a marker)::

    OUT_DIR/<video path relative to VIDEOS_DIR, without suffix>/
        0.jpg 1.jpg ...   face crops (BGR jpg, as cv2 writes them) at 25 fps; frames without a face are absent
        audio.wav         16 kHz mono
        mel.npy           the reference mel [80, columns] of audio.wav
        done.json         written last: the clip is complete (a rerun skips it)

Frames are resampled to 25 fps and faces found with the inference detector, padding and 5-frame
smoothing, so training crops look like the crops the pipeline feeds the model.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..defaults import DEFAULT_DETECTION_BATCH
from ..errors import LipSyncError
from ..faces.boxes import Box, Pads
from ..faces.detector import FaceDetector
from ..faces.locate import FaceLocator, LocateOptions
from ..media.audio import SAMPLE_RATE, decode_audio, to_model_rate
from ..media.read import iter_video_frames, open_frame_source
from ..render.crop import crop_faces
from ..speech.mel import melspectrogram

logger = logging.getLogger(__name__)

FPS = 25.0
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
MARKER = "done.json"
AUDIO_FILE = "audio.wav"
MEL_FILE = "mel.npy"
JPEG_QUALITY = 95


@dataclass(frozen=True, kw_only=True)
class PreprocessOptions:
    """How clips are turned into crops: fixed ``box`` (top, bottom, left, right) or a detector."""

    pads: Pads = field(default_factory=Pads)
    smooth: bool = True
    box: tuple[int, int, int, int] | None = None
    crop_size: int = 0  # 0: keep each crop's own size (the reference); else resize to crop_size x crop_size
    batch_size: int = DEFAULT_DETECTION_BATCH

    @property
    def locate(self) -> LocateOptions:
        """The face locator's settings. Training crops are real detections only: no gap filling (the reference drops
        frames without a face), best-scoring face, every frame detected, no cache."""
        return LocateOptions(box=self.box, pads=self.pads, smooth=self.smooth, max_gap=0, batch_size=self.batch_size)


@dataclass
class PreprocessReport:
    """What a run did, clip by clip (paths relative to the videos folder)."""

    written: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def find_videos(videos_dir: Path) -> list[Path]:
    """All video files under ``videos_dir`` (recursively), sorted."""
    return sorted(path for path in videos_dir.rglob("*") if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES)


def resample_frames(frames: Iterable[np.ndarray], source_fps: float, target_fps: float = FPS) -> Iterator[np.ndarray]:
    """Yield a ``target_fps`` stream from a constant-rate ``source_fps`` one: the nearest source frame
    (ties to the later one), as ffmpeg's fps filter."""
    ratio = source_fps / target_fps
    output = 0
    for index, frame in enumerate(frames):
        while math.floor(output * ratio + 0.5) == index:
            yield frame
            output += 1


def preprocess_folder(
    videos_dir: str | Path, out_dir: str | Path, detector: FaceDetector | None, options: PreprocessOptions
) -> PreprocessReport:
    """Preprocess every video under ``videos_dir`` into ``out_dir``; finished clips are skipped."""
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    if not videos_dir.is_dir():
        raise LipSyncError(f"The videos folder '{videos_dir}' does not exist.")
    videos = find_videos(videos_dir)
    if not videos:
        raise LipSyncError(f"No videos ({', '.join(sorted(VIDEO_SUFFIXES))}) found under '{videos_dir}'.")
    locator = FaceLocator(options.locate, detector, no_detector="preprocess needs a face detector or a fixed box")
    from tqdm import tqdm

    report = PreprocessReport()
    for video in tqdm(videos, unit="clip", desc="preprocess", disable=not logger.isEnabledFor(logging.INFO)):
        name = video.relative_to(videos_dir).with_suffix("").as_posix()
        clip_dir = out_dir / name
        if (clip_dir / MARKER).is_file():
            report.already_done.append(name)
            continue
        try:
            faces = preprocess_clip(video, clip_dir, locator, options)
        except LipSyncError as error:  # one bad clip must not stop the others
            shutil.rmtree(clip_dir, ignore_errors=True)
            report.failed[name] = str(error)
            logger.warning("skipped %s: %s", name, error)
            continue
        (report.written if faces else report.no_face).append(name)
        if not faces:
            logger.warning("skipped %s: no face found in any frame", name)
    logger.info(
        "preprocess: %d clips written, %d already done, %d without a face, %d failed",
        len(report.written),
        len(report.already_done),
        len(report.no_face),
        len(report.failed),
    )
    return report


def preprocess_clip(video: Path, clip_dir: Path, locator: FaceLocator, options: PreprocessOptions) -> int:
    """Write one clip's crops, audio and mel; returns the number of face crops (0: nothing kept)."""
    if clip_dir.exists():  # a run stopped half-way: start the clip again
        shutil.rmtree(clip_dir)
    clip_dir.mkdir(parents=True)
    samples, sample_rate = decode_audio(video, mono=True)
    wav = to_model_rate(samples, sample_rate)
    mel = melspectrogram(wav)
    source = open_frame_source(video)
    frames = resample_frames(iter_video_frames(video), source.fps)
    faces = 0
    total = 0
    for index, (frame, box) in enumerate(locator.track(frames)):
        total += 1
        if box is None:
            continue
        crop = crop_faces([frame], [box], options.crop_size)[0] if options.crop_size else _crop(frame, box)
        if not cv2.imwrite(str(clip_dir / f"{index}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise LipSyncError(f"Could not write a face crop into '{clip_dir}'. Check the disk space and permissions.")
        faces += 1
    if faces == 0:
        shutil.rmtree(clip_dir)
        return 0
    _write_wav(clip_dir / AUDIO_FILE, wav)
    np.save(clip_dir / MEL_FILE, mel.astype(np.float32))
    marker = {"frames": total, "faces": faces, "fps": FPS, "source_fps": source.fps, "mel_columns": int(mel.shape[1])}
    (clip_dir / MARKER).write_text(json.dumps(marker))
    return faces


def _crop(frame: np.ndarray, box: Box) -> np.ndarray:
    x1, y1, x2, y2 = box
    return frame[y1:y2, x1:x2]


def _write_wav(path: Path, wav: np.ndarray) -> None:
    from scipy.io import wavfile

    wavfile.write(str(path), SAMPLE_RATE, (np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16))

"""Score a video file (or a clip of frames in memory) with one or more SyncNets.

Frames are re-timed to 25 fps, faces found once with the engine's detector (or a fixed box), then each
scorer streams its own crops; only face boxes and embeddings are kept for the whole clip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ..defaults import DEFAULT_DETECTION_BATCH
from ..errors import MediaError
from ..faces.boxes import Pads
from ..faces.detector import FaceDetector
from ..faces.locate import FaceLocator, LocateOptions, RawBox
from ..faces.stream import BEST, DEFAULT_PADS
from ..media.audio import load_audio
from ..media.read import open_frame_source
from .crops import resample_indices
from .offsets import DEFAULT_VSHIFT
from .prepare import FULL_FRAMES, iter_frames_at, scorer_crops
from .scorers import ProgressCallback, SyncScore, SyncScorer

logger = logging.getLogger(__name__)
NO_DETECTOR = "Full frames need a face detector or a fixed box."


def face_boxes(
    frames: Iterable[np.ndarray],
    count: int,
    frame_size: tuple[int, int],
    detector: FaceDetector | None,
    box: tuple[int, int, int, int] | None,
    batch_size: int = DEFAULT_DETECTION_BATCH,
    choice: str = BEST,
    *,
    no_detector: str = NO_DETECTOR,
) -> list[RawBox | None]:
    """One raw face box per frame, from the engine's face locator: the fixed ``box`` (top, bottom, left, right; then
    ``frames`` is not read), or the chosen detection (no padding, smoothing or gap filling: the scorers cut their own)."""
    options = LocateOptions(box=box, face_choice=choice, batch_size=batch_size)
    boxes = FaceLocator(options, detector, no_detector=no_detector).raw_boxes(frames, count, frame_size)
    missing = sum(found is None for found in boxes)
    if missing:
        logger.warning("no face in %d of %d frames; their boxes are interpolated", missing, len(boxes))
    return boxes


def score_frames(
    scorers: Sequence[SyncScorer],
    frames: Callable[[], Iterable[np.ndarray]],
    count: int,
    wav: np.ndarray,
    input_kind: str,
    boxes: Sequence[RawBox | None] | None = None,
    frame_size: tuple[int, int] | None = None,
    pads: Pads = DEFAULT_PADS,
    vshift: int = DEFAULT_VSHIFT,
    on_progress: ProgressCallback | None = None,
) -> list[SyncScore]:
    """Score ``count`` frames at 25 fps (``frames()`` gives a fresh pass each call) against 16 kHz ``wav``."""
    results = []
    for scorer in scorers:
        crops = scorer_crops(scorer.architecture, frames(), input_kind, boxes, frame_size, pads)
        results.append(scorer.score(crops, count, wav, vshift, on_progress))
    return results


def score_video_file(
    video: str | Path,
    scorers: Sequence[SyncScorer],
    audio: str | Path | None = None,
    detector: FaceDetector | None = None,
    box: tuple[int, int, int, int] | None = None,
    input_kind: str = FULL_FRAMES,
    pads: Pads = DEFAULT_PADS,
    vshift: int = DEFAULT_VSHIFT,
    batch_size: int = DEFAULT_DETECTION_BATCH,
    on_progress: ProgressCallback | None = None,
) -> list[SyncScore]:
    """Score ``video`` against ``audio`` (default: the video's own sound track) with each scorer."""
    source = open_frame_source(video)
    if source.is_image:
        raise MediaError(f"'{video}' is a still image; sync scoring needs a video.")
    count = sum(1 for _ in source)
    indices = resample_indices(count, source.fps)
    if abs(source.fps - 25.0) > 1e-6:
        logger.info("re-timed %d frames at %.3f fps to %d frames at 25 fps", count, source.fps, len(indices))
    wav = load_audio(audio if audio is not None else video)

    def frames() -> Iterable[np.ndarray]:
        return iter_frames_at(source, indices)

    boxes = None
    if input_kind == FULL_FRAMES:
        boxes = face_boxes(frames(), len(indices), (source.height, source.width), detector, box, batch_size)
    return score_frames(scorers, frames, len(indices), wav, input_kind, boxes, (source.height, source.width), pads, vshift, on_progress)

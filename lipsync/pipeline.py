"""The streaming lip-sync run: audio -> mel windows, frames -> face boxes -> Wav2Lip -> paste -> encode.

Frames flow through in chunks; memory holds one generation batch plus the detector's look-ahead,
whatever the length of the video. The output appears only when the whole run succeeded.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from .defaults import (
    DEFAULT_CODEFORMER_FIDELITY,
    DEFAULT_CRF,
    DEFAULT_FPS,
    DEFAULT_GENERATION_BATCH,
    DEFAULT_RESTORE_STRENGTH,
)
from .engine import lipsync_chunk
from .errors import NoFaceError
from .faces.boxes import Box, Pads
from .faces.detector import FaceDetector
from .faces.locate import FaceLocator, LocateOptions
from .faces.report import MissingFace
from .media.audio import AudioSource, load_audio
from .media.framestore import FrameStore
from .media.read import FrameSource, FrameTransform, open_frame_source
from .media.write import AUTO, ENCODERS, LIBX264, VideoWriter
from .overlap import BackgroundConsumer, prefetch
from .render.blend import PasteOptions
from .render.generate import Wav2LipGenerator
from .restore import FaceRestorer
from .speech.mel import melspectrogram, window_count
from .speech.timeline import FIT_AUDIO, LOOP, PING_PONG, LengthMode, SpeechWindows, output_frame_count, source_frame

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")

NO_DETECTOR = "a face detector is needed unless a fixed box is given"
LOCATE = LocateOptions()  # the face-finding defaults, defined once there


@dataclass(frozen=True, kw_only=True)
class LipSyncOptions:
    """Run settings; the defaults are the reference's, except detection on a downscaled frame and short face-less gaps
    filled (``max_gap``). The face-finding fields are ``LocateOptions``' (see ``locate``)."""

    pads: Pads = field(default_factory=Pads)
    box: tuple[int, int, int, int] | None = None
    smooth: bool = LOCATE.smooth
    static: bool = False
    image_fps: float = DEFAULT_FPS
    transform: FrameTransform = field(default_factory=FrameTransform)
    face_det_batch_size: int = LOCATE.batch_size
    wav2lip_batch_size: int = DEFAULT_GENERATION_BATCH
    on_missing_face: str = MissingFace.PASSTHROUGH
    face_choice: str = LOCATE.face_choice
    face_index: int = LOCATE.face_index
    crf: int = DEFAULT_CRF
    detect_every: int = LOCATE.detect_every  # run the detector on every Nth frame and interpolate the boxes between
    detection_cache: str | Path | None = None  # folder of the detection cache; None: no cache
    # decode + detect and encode in background threads, overlapping generation; None = on when generating on a GPU
    # (on a 2-core CPU every stage competes for the same cores: no faster, and ~100 MiB more queued frames)
    overlap: bool | None = None
    max_gap: int = LOCATE.max_gap  # face-less gaps up to this many frames get interpolated boxes (0: the reference)
    # a video shorter than the speech: loop (reference), ping-pong, or trim to the video; or the video sets the length
    # and the speech is cut or padded with silence (fit audio to video)
    length_mode: LengthMode = LOOP
    paste: PasteOptions = field(default_factory=PasteOptions)
    restore_strength: float = DEFAULT_RESTORE_STRENGTH  # with a face restorer: 0..1 of the restored mouth region blended in
    codeformer_fidelity: float = DEFAULT_CODEFORMER_FIDELITY
    encoder: str = AUTO  # H.264 encoder: auto = h264_nvenc when generating on CUDA and it opens, else libx264

    def __post_init__(self) -> None:
        object.__setattr__(self, "on_missing_face", MissingFace.of(self.on_missing_face))
        object.__setattr__(self, "length_mode", LengthMode.of(self.length_mode))
        self.locate  # noqa: B018 -- building the face-finding options checks them (detect_every, max_gap, face choice, batch)
        if not 0.0 <= self.restore_strength <= 1.0 or not 0.0 <= self.codeformer_fidelity <= 1.0:
            raise ValueError("restore_strength and codeformer_fidelity must be between 0 and 1")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")

    @property
    def locate(self) -> LocateOptions:
        """Where the faces are: these options' fixed box, or detection with these settings."""
        return LocateOptions(
            box=self.box, pads=self.pads, smooth=self.smooth, face_choice=self.face_choice, face_index=self.face_index,
            max_gap=self.max_gap, detect_every=self.detect_every, cache_dir=self.detection_cache, batch_size=self.face_det_batch_size,
        )  # fmt: skip


@dataclass
class StageTimes:
    """Seconds spent per stage, for the benchmark and the run summary."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def timed(self, stage: str, items: Iterable) -> Iterator:
        """Yield from ``items``, charging the time spent producing each item to ``stage``."""
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.add(stage, time.perf_counter() - start)
            yield item


@dataclass(frozen=True)
class RunReport:
    """What a run produced."""

    output: Path
    frames: int
    frames_without_face: int
    fps: float
    seconds: float
    stage_seconds: dict[str, float]
    encoder: str = "libx264"  # the H.264 encoder that wrote the output (h264_nvenc or libx264)


class TimedDetector(FaceDetector):
    """Charges a detector's time to the ``detect`` stage."""

    def __init__(self, detector: FaceDetector, times: StageTimes) -> None:
        self.detector, self.times = detector, times

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        start = time.perf_counter()
        try:
            return self.detector.detect(frames)
        finally:
            self.times.add("detect", time.perf_counter() - start)


def frame_schedule(
    source: FrameSource,
    frame_count: int,
    detector: FaceDetector | None,
    options: LipSyncOptions,
    times: StageTimes,
) -> Iterator[tuple[np.ndarray, Box | None]]:
    """Yield up to ``frame_count`` ``(frame, box)`` pairs: output frame ``i`` shows source frame
    ``timeline.source_frame(i, ...)`` under ``options.length_mode`` (a longer video is cut to ``frame_count``).

    Boxes come from the face locator (fixed box or detection). Boxes of the first pass are kept (4 ints a frame) so
    repeating re-decodes frames but never re-detects; ping-pong reads the frames back from a temporary file instead of
    holding them in memory.
    """
    frames = times.timed("decode", source)
    locator = FaceLocator(options.locate, TimedDetector(detector, times) if detector is not None else None, no_detector=NO_DETECTOR)
    if source.is_image or options.static:
        frame = next(frames)
        box = locator.each([frame])[0]
        for _ in range(frame_count):
            yield frame.copy(), box
        return

    mode = LengthMode.of(options.length_mode)
    boxes: list[Box | None] = []
    # Ping-pong needs the frames again in reverse, unless the video is known to outlast the speech.
    keep_frames = mode == PING_PONG and (source.frame_count is None or source.frame_count < frame_count)
    with FrameStore() as store:
        for frame, box in locator.track(itertools.islice(frames, frame_count)):
            boxes.append(box)
            if keep_frames:
                store.append(frame)
            yield frame, box
        if not boxes:
            raise NoFaceError(f"The video '{source.path}' produced no frames.")
        if len(boxes) == frame_count or not mode.repeats_video:
            return
        if keep_frames:
            for index in range(len(boxes), frame_count):
                origin = source_frame(index, len(boxes), mode)
                yield store[origin], boxes[origin]
            return
    yield from _decoded_again(source, boxes, frame_count, mode, times)


def _decoded_again(
    source: FrameSource, boxes: list[Box | None], frame_count: int, mode: LengthMode, times: StageTimes
) -> Iterator[tuple[np.ndarray, Box | None]]:
    """Output frames ``len(boxes) .. frame_count`` of a repeated video, decoding the file again from its start
    whenever the source frame goes back (loop: once per pass)."""
    decoder: Iterator[np.ndarray] | None = None
    position = -1
    for index in range(len(boxes), frame_count):
        origin = source_frame(index, len(boxes), mode)
        if decoder is None or origin <= position:
            decoder, position = iter(times.timed("decode", source)), -1
        frame = None
        while position < origin:
            frame = next(decoder, None)
            position += 1
            if frame is None:  # the file gave fewer frames than on the first pass: the output ends here
                return
        yield frame, boxes[origin]


@contextlib.contextmanager
def _frame_sink(writer: VideoWriter, times: StageTimes, depth: int) -> Iterator[Callable[[np.ndarray], None]]:
    """A callable that encodes one frame: on a background thread when ``depth`` > 0, else inline."""

    def encode(frame: np.ndarray) -> None:
        step = time.perf_counter()
        writer.write(frame)
        times.add("encode", time.perf_counter() - step)

    if depth <= 0:
        yield encode
        return
    with BackgroundConsumer(encode, depth) as consumer:
        yield consumer.put


@contextlib.contextmanager
def _in_background(function: Callable[..., T], *args: object) -> Iterator[Future[T]]:
    """``function(*args)`` on a thread of its own; leaving waits for it (it cannot be interrupted)."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="lipsync-background")
    try:
        yield pool.submit(function, *args)
    finally:
        pool.shutdown(wait=True)


def lipsync_file(
    face_path: str | Path | FrameSource,
    audio_path: AudioSource,
    output_path: str | Path,
    generator: Wav2LipGenerator,
    detector: FaceDetector | None,
    options: LipSyncOptions = LipSyncOptions(),
    on_progress: ProgressCallback | None = None,
    restorer: FaceRestorer | None = None,
) -> RunReport:
    """Lip-sync ``face_path`` (video or image) to ``audio_path`` and write ``output_path`` (mp4, H.264 + AAC).

    With a ``restorer`` each pasted face is restored at 512 and blended in inside the mouth mask. ``face_path`` may
    also be an opened FrameSource (frames in memory) and ``audio_path`` samples in memory (ComfyUI's IMAGE and AUDIO).
    An exception from ``on_progress`` (Cancel) stops the run between chunks and leaves no output file.
    """
    started = time.perf_counter()
    times = StageTimes()
    if isinstance(face_path, FrameSource):
        source = face_path
    else:
        source = open_frame_source(face_path, fps=options.image_fps, transform=options.transform)
    audio_start = time.perf_counter()
    wav = load_audio(audio_path)
    video_frames = 0 if source.is_image or options.static else source.frame_count or 0
    # The speech's window count without its mel (computed on a thread while frames are decoded), matched to the video.
    total = output_frame_count(window_count(wav.size, source.fps), video_frames, options.length_mode)
    times.add("audio", time.perf_counter() - audio_start)
    logger.info("%d output frames at %.3f fps from %s", total, source.fps, source.path.name)

    written = without_face = 0
    chunk_size = min(options.wav2lip_batch_size, generator.max_batch_size)
    schedule = frame_schedule(source, total, detector, options, times)
    overlap = options.overlap if options.overlap is not None else generator.device.type != "cpu"
    if overlap:
        schedule = prefetch(schedule, depth=chunk_size)
    encoder = options.encoder if options.encoder != AUTO or generator.device.type == "cuda" else LIBX264
    size = (source.width, source.height)
    with (
        _in_background(melspectrogram, wav) as mel,
        VideoWriter(
            output_path, source.fps, *size, audio_path=audio_path, crf=options.crf, encoder=encoder,
            pad_audio=options.length_mode == FIT_AUDIO,
        ) as writer,
        _frame_sink(writer, times, chunk_size if overlap else 0) as sink,
    ):
        windows: SpeechWindows | None = None
        while written < total:
            chunk = list(itertools.islice(schedule, chunk_size))
            if not chunk:
                break
            frames = [frame for frame, _ in chunk]
            with_face = [index for index, (_, box) in enumerate(chunk) if box is not None]
            if len(with_face) < len(chunk) and options.on_missing_face == MissingFace.ERROR:
                missing = written + next(i for i, (_, box) in enumerate(chunk) if box is None)
                raise NoFaceError(
                    f"No face detected in output frame {missing}. Give a fixed --box, raise --det-max-side, "
                    "or use --on-missing-face passthrough to keep such frames unchanged."
                )
            without_face += len(chunk) - len(with_face)
            if with_face:
                if windows is None:
                    step = time.perf_counter()
                    windows = SpeechWindows(mel.result(), source.fps, total, video_frames, options.length_mode)
                    times.add("audio", time.perf_counter() - step)  # only the wait for the mel thread
                lipsync_chunk(
                    [torch.from_numpy(frame) for frame in frames], [box for _, box in chunk],
                    windows.batch(range(written, written + len(chunk))), generator, options.paste,
                    restorer, options.restore_strength, options.codeformer_fidelity, charge=times.add,
                )  # fmt: skip
            for frame in frames:
                sink(frame)
            written += len(chunk)
            if on_progress is not None:
                on_progress(written, total)
    if without_face:
        logger.warning("%d of %d frames had no face and were left unchanged", without_face, written)
    seconds = time.perf_counter() - started
    return RunReport(Path(output_path), written, without_face, source.fps, seconds, dict(times.seconds), writer.codec)

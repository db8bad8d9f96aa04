"""Write the result: H.264 video muxed with the speech as AAC, into a temporary file that is renamed
into place only when everything succeeded, so a failed or cancelled run leaves no partial output."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from ..errors import MediaError, OutputError
from .audio import AudioSamples, AudioSource
from .yuv import rgb_to_yuv420p

logger = logging.getLogger(__name__)

AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
AAC_FRAME = 1024

LIBX264 = "libx264"
NVENC = "h264_nvenc"
AUTO = "auto"
ENCODERS = (AUTO, LIBX264, NVENC)  # auto: NVENC when the generator runs on CUDA and NVENC opens, else libx264


@functools.lru_cache(maxsize=8)
def nvenc_failure(width: int, height: int) -> str | None:
    """None when FFmpeg's ``h264_nvenc`` opens at ``width`` x ``height`` here, else why it does not.

    PyAV wheels list NVENC even where no NVIDIA driver or free encoder session exists; it fails only
    when the codec is opened, so a throw-away context is opened once per size and process.
    """
    import av

    try:
        context = av.CodecContext.create(NVENC, "w")
        context.width, context.height, context.pix_fmt = width, height, "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
    except Exception as error:  # noqa: BLE001 - any failure (not built in, no driver, no session) means libx264
        return str(error).strip() or type(error).__name__
    del context  # freed here, which ends its encoder session
    return None


def choose_encoder(encoder: str, width: int, height: int) -> str:
    """The codec to write with: ``h264_nvenc`` when asked (or ``auto``) and it opens, else ``libx264``
    (with one log line saying why)."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if encoder == LIBX264:
        return LIBX264
    failure = nvenc_failure(width + width % 2, height + height % 2)  # the writer pads odd sizes
    if failure is None:
        return NVENC
    log = logger.warning if encoder == NVENC else logger.info
    log("h264_nvenc does not open here (%s); encoding with libx264", failure)
    return LIBX264


def stream_audio(path: AudioSource, rate: int, layout: str) -> Iterator[np.ndarray]:
    """Decode ``path``'s first audio track (or take samples in memory) as float32 planar ``[channels, n]`` chunks at ``rate``."""
    import av

    if isinstance(path, AudioSamples):
        yield from (_finite(chunk) for chunk in path.resampled(rate, layout))
        return
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise MediaError(f"'{path}' has no audio track to put in the output.")
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        for frame in container.decode(container.streams.audio[0]):
            for converted in resampler.resample(frame):
                yield _finite(converted.to_ndarray())
        for converted in resampler.resample(None):
            yield _finite(converted.to_ndarray())


def _finite(samples: np.ndarray) -> np.ndarray:
    """NaN/Inf samples as silence, as the mel sees them (the AAC encoder refuses non-finite input)."""
    return samples if np.isfinite(samples).all() else np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)


def audio_track_format(path: AudioSource) -> tuple[int, str]:
    """The AAC sample rate and layout to re-encode ``path``'s audio with (native where AAC allows)."""
    import av

    if isinstance(path, AudioSamples):
        native_rate, channels = path.sample_rate, path.channels if path.channels <= 2 else 1
    else:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"'{path}' has no audio track to put in the output.")
            context = container.streams.audio[0].codec_context
            native_rate, channels = context.sample_rate, context.layout.nb_channels
    rate = native_rate if native_rate in AAC_RATES else 48000
    layout = "mono" if channels == 1 else "stereo"
    return rate, layout


class VideoWriter:
    """Encode RGB uint8 frames to ``path`` (mp4/mkv/mov), optionally with an audio track (a file or samples in memory).

    Use as a context manager: on a clean exit the temporary file replaces ``path``; on any
    exception (KeyboardInterrupt included) it is deleted and ``path`` is left as it was.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        width: int,
        height: int,
        audio_path: AudioSource | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        encoder: str = LIBX264,
        pad_audio: bool = False,
    ) -> None:
        if width < 1 or height < 1:
            raise MediaError(f"Cannot write a {width}x{height} video.")
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(100000)
        self.width, self.height = width, height
        self.audio_path = Path(audio_path) if isinstance(audio_path, str | Path) else audio_path
        self.crf, self.preset = crf, preset
        self.pad_audio = pad_audio  # speech shorter than the video ends in silence (else the audio track just ends)
        self.encoder = encoder  # LIBX264, NVENC or AUTO; the codec actually used is ``self.codec`` once open
        self.codec = LIBX264
        self.frames_written = 0
        self._container = None
        self._temp_path: Path | None = None

    def __enter__(self) -> VideoWriter:
        import av

        if self.path.is_dir():
            raise OutputError(f"The output '{self.path}' is a folder; give a file name inside it.")
        if self.path.suffix.lower() not in (".mp4", ".mkv", ".mov"):
            raise OutputError(f"The output '{self.path.name}' must end in .mp4, .mkv or .mov.")
        # A unique hidden name beside the target; created by the muxer, so the user's umask applies.
        temp_name = str(self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:12]}.partial{self.path.suffix}"))
        self._temp_path = Path(temp_name)
        try:
            with self._output_errors():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                container_format = self.path.suffix.lstrip(".").lower()
                self._container = av.open(temp_name, mode="w", format="matroska" if container_format == "mkv" else container_format)
            self._open_streams()
        except BaseException:
            self._abort()
            raise
        return self

    @contextlib.contextmanager
    def _output_errors(self) -> Iterator[None]:
        """Turn a failed write (disk full, read-only, file too large) into an error naming the folder."""
        try:
            yield
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise OutputError(
                f"Cannot write the output in '{self.path.parent}': {reason}. Free space or choose another folder; "
                "no partial file was left and an existing output is unchanged."
            ) from error

    def _open_streams(self) -> None:
        # yuv420p needs even sizes; odd edges are padded by repeating the last row/column.
        self._encoded_width = self.width + self.width % 2
        self._encoded_height = self.height + self.height % 2
        if (self._encoded_width, self._encoded_height) != (self.width, self.height):
            logger.warning(
                "%dx%d is odd-sized; padding to %dx%d for H.264",
                self.width,
                self.height,
                self._encoded_width,
                self._encoded_height,
            )
        self._video = self._add_video_stream()
        self._audio = None
        if self.audio_path is not None:
            rate, layout = audio_track_format(self.audio_path)
            self._audio = self._container.add_stream("aac", rate=rate)
            self._audio.layout = layout
            self._audio_rate, self._audio_layout = rate, layout
            self._audio_chunks = stream_audio(self.audio_path, rate, layout)
            self._audio_pending = np.zeros((1 if layout == "mono" else 2, 0), dtype=np.float32)
            self._audio_sent = 0
            self._audio_done = False

    def _add_video_stream(self):
        """The H.264 stream, with the codec's own threads (frame and slice) on every core."""
        self.codec = choose_encoder(self.encoder, self.width, self.height)
        video = self._container.add_stream(self.codec, rate=self.fps)
        video.width, video.height = self._encoded_width, self._encoded_height
        video.pix_fmt = "yuv420p"
        if self.codec == NVENC:  # constant quality at the crf's value, as libx264's crf does
            video.options = {"preset": "p4", "rc": "vbr", "cq": str(self.crf), "b": "0"}
        else:
            video.options = {"crf": str(self.crf), "preset": self.preset}
        video.thread_type = "AUTO"  # PyAV's default (slice threads only) leaves libx264 at ~40% of its speed
        return video

    def write(self, frame: np.ndarray) -> None:
        """Encode one RGB uint8 ``[H, W, 3]`` frame of the size given at construction."""
        import av

        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, got {frame.shape} {frame.dtype}")
        if (self._encoded_width, self._encoded_height) != (self.width, self.height):
            frame = np.pad(frame, ((0, self._encoded_height - self.height), (0, self._encoded_width - self.width), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(np.ascontiguousarray(frame)), format="yuv420p")
        video_frame.pts = self.frames_written
        with self._output_errors():
            for packet in self._video.encode(video_frame):
                self._container.mux(packet)
            self.frames_written += 1
            if self._audio is not None:
                self._write_audio_until(self.frames_written / self.fps)

    def _write_audio_until(self, seconds: Fraction, final: bool = False) -> None:
        """Encode the audio up to ``seconds`` (the video's running length) so the streams interleave."""
        import av

        target = int(seconds * self._audio_rate)
        while self._audio_sent + self._audio_pending.shape[1] < target and not self._audio_done:
            chunk = next(self._audio_chunks, None)
            if chunk is None:
                self._audio_done = True
            else:
                self._audio_pending = np.concatenate([self._audio_pending, chunk.astype(np.float32, copy=False)], axis=1)
        missing = target - self._audio_sent - self._audio_pending.shape[1]
        if self._audio_done and self.pad_audio and missing > 0:
            silence = np.zeros((self._audio_pending.shape[0], missing), dtype=np.float32)
            self._audio_pending = np.concatenate([self._audio_pending, silence], axis=1)
        while True:
            available = min(self._audio_pending.shape[1], target - self._audio_sent)
            if available <= 0 or (available < AAC_FRAME and not final):
                break
            count = min(AAC_FRAME, available)
            samples = np.ascontiguousarray(self._audio_pending[:, :count])
            self._audio_pending = self._audio_pending[:, count:]
            audio_frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self._audio_layout)
            audio_frame.sample_rate = self._audio_rate
            audio_frame.pts = self._audio_sent
            audio_frame.time_base = Fraction(1, self._audio_rate)
            self._audio_sent += count
            for packet in self._audio.encode(audio_frame):
                self._container.mux(packet)

    def _finish(self) -> None:
        if self.frames_written == 0:
            raise MediaError("No frames were produced, so no video was written.")
        with self._output_errors():
            self._flush()

    def _flush(self) -> None:
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio is not None:
            self._write_audio_until(self.frames_written / self.fps, final=True)
            for packet in self._audio.encode(None):
                self._container.mux(packet)
            self._audio_chunks.close()
        self._container.close()
        self._container = None
        os.replace(self._temp_path, self.path)
        self._temp_path = None

    def _abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                logger.debug("closing the partial output failed", exc_info=True)
            self._container = None
        if self.audio_path is not None and hasattr(self, "_audio_chunks"):
            self._audio_chunks.close()
        if self._temp_path is not None:
            self._temp_path.unlink(missing_ok=True)
            self._temp_path = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise

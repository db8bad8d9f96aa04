"""Write the result: H.264 video muxed with the speech as AAC, into a temporary file that is renamed
into place only when everything succeeded, so a failed or cancelled run leaves no partial output."""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


class AudioEncoder:
    """Encodes the audio track on a thread of its own, up to the video's running length, for the writer to mux.

    AAC encoding costs about 1.2 ms a frame of 25 fps video (1.8 s for a minute on the 16-core GPU machine); on the
    writer's thread it held a GPU run's encoding back. Here it runs beside the video encoder. The writer says how long
    the video is so far (``advance``), muxes the packets that are ready (``ready``) and ends with ``finish``; the
    samples encoded, and so the packets, are those the writer used to encode itself.
    """

    def __init__(self, stream, chunks: Iterator[np.ndarray], rate: int, layout: str, pad: bool) -> None:
        self.stream, self.chunks, self.rate, self.layout, self.pad = stream, chunks, rate, layout, pad
        self.pending = np.zeros((1 if layout == "mono" else 2, 0), dtype=np.float32)
        self.sent = 0  # samples handed to the encoder
        self.source_done = False
        self.packets: collections.deque = collections.deque()
        self.error: BaseException | None = None
        self._target = 0
        self._final = self._stopped = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="lipsync-audio-encode", daemon=True)
        self._thread.start()

    def advance(self, seconds: Fraction) -> None:
        """The video is now ``seconds`` long: encode the audio up to there (whole AAC frames only)."""
        with self._wake:
            self._target = int(seconds * self.rate)
            self._wake.notify()

    def ready(self) -> list:
        """The packets encoded since the last call, in order; re-raises the thread's error."""
        if self.error is not None:
            raise self.error
        return [self.packets.popleft() for _ in range(len(self.packets))]

    def finish(self, seconds: Fraction) -> list:
        """Encode up to ``seconds`` (the video's final length), the last partial frame and the encoder's flush; returns
        the packets not yet taken."""
        with self._wake:
            self._target, self._final = int(seconds * self.rate), True
            self._wake.notify()
        self._thread.join()
        self.chunks.close()
        return self.ready()

    def stop(self) -> None:
        """Stop without finishing the track (the output is being discarded)."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join()
        self.chunks.close()

    def _run(self) -> None:
        done = 0
        try:
            while True:
                with self._wake:
                    while not self._stopped and not self._final and self._target - done < AAC_FRAME:
                        self._wake.wait()
                    if self._stopped:
                        return
                    target, final = self._target, self._final
                self._encode_until(target, final)
                done = target
                if final:
                    self.packets.extend(self.stream.encode(None))
                    return
        except BaseException as error:  # noqa: BLE001 - re-raised on the writer's thread
            self.error = error

    def _encode_until(self, target: int, final: bool) -> None:
        import av

        while self.sent + self.pending.shape[1] < target and not self.source_done:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.source_done = True
            else:
                self.pending = np.concatenate([self.pending, chunk.astype(np.float32, copy=False)], axis=1)
        missing = target - self.sent - self.pending.shape[1]
        if self.source_done and self.pad and missing > 0:
            self.pending = np.concatenate([self.pending, np.zeros((self.pending.shape[0], missing), dtype=np.float32)], axis=1)
        while True:
            available = min(self.pending.shape[1], target - self.sent)
            if available <= 0 or (available < AAC_FRAME and not final):
                return
            count = min(AAC_FRAME, available)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(self.pending[:, :count]), format="fltp", layout=self.layout)
            self.pending = self.pending[:, count:]
            frame.sample_rate, frame.pts, frame.time_base = self.rate, self.sent, Fraction(1, self.rate)
            self.sent += count
            self.packets.extend(self.stream.encode(frame))


def yuv420p_frame(rgb: np.ndarray):
    """An ``av.VideoFrame`` in ``yuv420p`` holding an RGB uint8 ``[H, W, 3]`` frame (even H and W).

    The planes are written in place, which costs a third of ``VideoFrame.from_ndarray`` and, unlike it, lets other
    threads run (NumPy's copies release the GIL).
    """
    import av

    height, width = rgb.shape[:2]
    planes = rgb_to_yuv420p(np.ascontiguousarray(rgb)).reshape(-1)
    frame = av.VideoFrame(width, height, "yuv420p")
    start = 0
    for plane, rows in zip(frame.planes, (height, height // 2, height // 2), strict=True):
        columns = plane.width
        target = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:rows, :columns]
        target[...] = planes[start : start + rows * columns].reshape(rows, columns)
        start += rows * columns
    return frame


def conversion_workers() -> int:
    """Threads converting frames to YUV ahead of the encoder: two where there are cores to spare (a GPU run
    wants 500 frames/s and one converts about 700 at 720p), else one."""
    return 2 if (os.cpu_count() or 1) >= 8 else 1


class VideoWriter:
    """Encode RGB uint8 frames to ``path`` (mp4/mkv/mov), optionally with an audio track (a file or samples in memory).

    Use as a context manager: on a clean exit the temporary file replaces ``path``; on any
    exception (KeyboardInterrupt included) it is deleted and ``path`` is left as it was.

    Frames are converted to YUV on worker threads a few frames ahead of the encoder, and the audio is encoded on a
    thread of its own, so ``write`` costs the caller little more than the H.264 encoder's own call. A frame passed to
    ``write`` must not be changed afterwards (the pipeline hands each frame over once).
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
        self._audio_encoder: AudioEncoder | None = None
        self._converter: ThreadPoolExecutor | None = None
        self._converted: collections.deque[Future] = collections.deque()
        self._ahead = 1  # frames converted ahead of the encoder: the number of conversion threads, set when opened

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
        if self.audio_path is not None:
            rate, layout = audio_track_format(self.audio_path)
            audio = self._container.add_stream("aac", rate=rate)
            audio.layout = layout
            chunks = stream_audio(self.audio_path, rate, layout)
            self._audio_encoder = AudioEncoder(audio, chunks, rate, layout, self.pad_audio)
        self._ahead = conversion_workers()
        self._converter = ThreadPoolExecutor(self._ahead, thread_name_prefix="lipsync-yuv")

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
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, got {frame.shape} {frame.dtype}")
        self._converted.append(self._converter.submit(self._to_video_frame, frame))
        if len(self._converted) > self._ahead:
            self._encode_converted()

    def _to_video_frame(self, frame: np.ndarray):
        if (self._encoded_width, self._encoded_height) != (self.width, self.height):
            frame = np.pad(frame, ((0, self._encoded_height - self.height), (0, self._encoded_width - self.width), (0, 0)), mode="edge")
        return yuv420p_frame(frame)

    def _encode_converted(self) -> None:
        """Encode the oldest converted frame, and mux the audio encoded meanwhile."""
        video_frame = self._converted.popleft().result()
        video_frame.pts = self.frames_written
        with self._output_errors():
            for packet in self._video.encode(video_frame):
                self._container.mux(packet)
            self.frames_written += 1
            if self._audio_encoder is not None:
                self._audio_encoder.advance(self.frames_written / self.fps)
                for packet in self._audio_encoder.ready():
                    self._container.mux(packet)

    def _finish(self) -> None:
        while self._converted:
            self._encode_converted()
        if self.frames_written == 0:
            raise MediaError("No frames were produced, so no video was written.")
        with self._output_errors():
            self._flush()

    def _flush(self) -> None:
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio_encoder is not None:
            for packet in self._audio_encoder.finish(self.frames_written / self.fps):
                self._container.mux(packet)
            self._audio_encoder = None
        self._stop_converter()
        self._container.close()
        self._container = None
        os.replace(self._temp_path, self.path)
        self._temp_path = None

    def _stop_converter(self) -> None:
        if self._converter is not None:
            for pending in self._converted:
                pending.cancel()
            self._converter.shutdown(wait=True)
            self._converter = None
            self._converted.clear()

    def _abort(self) -> None:
        self._stop_converter()
        if self._audio_encoder is not None:
            self._audio_encoder.stop()
            self._audio_encoder = None
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                logger.debug("closing the partial output failed", exc_info=True)
            self._container = None
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

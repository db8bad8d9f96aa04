"""H.264 encoding benchmark: ms/frame at 720p for libx264 with PyAV's default threading (slice threads only,
as the writer opened it before) against the codec's own frame threads (``thread_type="AUTO"``, what
``lipsync.encode.VideoWriter`` does now), and ``h264_nvenc`` when it opens (else the writer's fallback is shown).
The writer's rows also give the CPU time of the thread that calls ``write`` (a GPU run's encode thread: the YUV
conversion and the AAC track run on threads of their own), without and with a speech track as long as the video.

    python -m benchmarks.bench_encode                      # 720p, 100 frames
    python -m benchmarks.bench_encode --frames 250 --size 1920x1080
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lipsync.media.audio import AudioSamples
from lipsync.media.write import LIBX264, NVENC, VideoWriter, nvenc_failure

logger = logging.getLogger("bench_encode")


def test_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """A moving textured picture (an encoder's cost depends on content; flat frames would flatter it)."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (height // 4, width // 4 + count, 3), dtype=np.uint8).repeat(4, axis=0).repeat(4, axis=1)
    return [np.ascontiguousarray(texture[:height, 4 * index : 4 * index + width]) for index in range(count)]


def raw_libx264(path: Path, frames: list[np.ndarray], thread_type: str | None) -> float:
    """Seconds to encode ``frames`` through PyAV with the writer's settings; ``thread_type`` None keeps PyAV's default."""
    height, width = frames[0].shape[:2]
    start = time.perf_counter()
    with av.open(str(path), "w") as container:
        stream = container.add_stream(LIBX264, rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        if thread_type is not None:
            stream.thread_type = thread_type
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return time.perf_counter() - start


def writer_seconds(path: Path, frames: list[np.ndarray], encoder: str, audio: AudioSamples | None = None) -> tuple[float, float, str]:
    """Wall seconds, the calling thread's CPU seconds, and the codec used."""
    height, width = frames[0].shape[:2]
    start, start_cpu = time.perf_counter(), time.thread_time()
    with VideoWriter(path, 25.0, width, height, encoder=encoder, audio_path=audio) as writer:
        for frame in frames:
            writer.write(frame)
    return time.perf_counter() - start, time.thread_time() - start_cpu, writer.codec


def speech_track(seconds: float, rate: int = 48000) -> AudioSamples:
    """Stereo noise-modulated tones at 48 kHz, ``seconds`` long (AAC's cost depends little on the content)."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.2 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    noise = 0.01 * np.random.default_rng(0).standard_normal((2, t.size))
    return AudioSamples((wave + noise).astype(np.float32), rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting; the fastest is reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    width, height = (int(value) for value in args.size.split("x"))
    frames = test_frames(args.frames, width, height)
    logger.info("PyAV %s (FFmpeg %s), %d CPU cores, %d frames of %dx%d", av.__version__,
                av.library_versions.get("libavcodec"), os.cpu_count() or 0, args.frames, width, height)  # fmt: skip
    failure = nvenc_failure(width, height)
    logger.info("h264_nvenc: %s", "opens" if failure is None else f"does not open ({failure})")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for label, thread_type in (("libx264, PyAV default threads (before)", None), ("libx264, thread_type AUTO", "AUTO")):
            best = min(raw_libx264(out / "raw.mp4", frames, thread_type) for _ in range(args.repeats))
            logger.info("%-44s %6.2f ms/frame", label, 1000 * best / len(frames))
        speech = speech_track(len(frames) / 25)
        for encoder, audio in ((LIBX264, None), (NVENC, None), (LIBX264, speech)):
            runs = [writer_seconds(out / f"{encoder}.mp4", frames, encoder, audio) for _ in range(args.repeats)]
            best, caller_cpu, codec = min(runs)
            size_kib = (out / f"{encoder}.mp4").stat().st_size / 1024
            label = f"VideoWriter(encoder={encoder!r}){' + AAC speech' if audio else ''}"
            logger.info("%-44s %6.2f ms/frame, caller's thread %.2f ms CPU/frame (%s, %.0f KiB)",
                        label, 1000 * best / len(frames), 1000 * caller_cpu / len(frames), codec, size_kib)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

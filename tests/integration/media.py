"""Test media for the real server: short cuts of the real clip and speech, a still image, and readers for the results.

Short inputs keep the suite fast on a 2-core CPU. The speech is cut so that Wav2Lip's window rule
(the reference ``inference.py``: a 16-column mel window every 80/fps columns while it fits, then one
clamped to the end; 80 columns a second, a 200-sample hop at 16 kHz) gives exactly as many windows as
the clip has frames, so every length mode gives ``FRAMES`` frames: 0.92 s of speech is 1 + 14720 // 200
= 74 columns, windows at int(i * 3.2) for i = 0..18 fit (57 + 16 <= 74), the 20th is the clamped one.
Graphs that restore faces (5-12 s per face on such a CPU) get a shorter pair: 0.24 s is 20 columns,
windows i = 0..1 fit (3 + 16 <= 20), plus the clamped one: ``SHORT_FRAMES`` = 3.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

FPS = 25
FRAMES = 20
SHORT_FRAMES = 3
SPEECH_SECONDS = 0.92  # FRAMES windows (see above)
SHORT_SPEECH_SECONDS = 0.24  # SHORT_FRAMES windows
# Speech for the second run of the caching test starts here (seconds into speech.wav).
OTHER_SPEECH_START = 2.0


@dataclass(frozen=True)
class Clip:
    """A file on this machine and the widget value it was uploaded as."""

    path: Path
    name: str


@dataclass(frozen=True)
class Media:
    video: Clip  # FRAMES frames of the real clip, with its speech track (H.264 CRF 1 + AAC)
    speech: Clip  # SPEECH_SECONDS of speech.wav: FRAMES windows
    other_speech: Clip  # as long, from later in speech.wav
    short_video: Clip  # SHORT_FRAMES frames
    short_speech: Clip  # SHORT_SPEECH_SECONDS: SHORT_FRAMES windows
    short_other_speech: Clip  # as long, from later in speech.wav
    still: Clip  # a frontal portrait photo (PNG)


def ffmpeg() -> str:
    """The ffmpeg binary of imageio-ffmpeg (VideoHelperSuite's dependency) or the one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        import shutil

        found = shutil.which("ffmpeg")
        if found is None:
            raise RuntimeError("the integration tests need ffmpeg: pip install imageio-ffmpeg") from None
        return found


def _ffmpeg(*arguments: str) -> None:
    subprocess.run([ffmpeg(), "-y", "-loglevel", "error", *arguments], check=True)


def cut_video(source: Path, target: Path, frames: int) -> Path:
    """The first ``frames`` frames at FPS with their audio (the clip's timestamps have a gap, so frames are counted, not seconds)."""
    video_filter = f"trim=end_frame={frames},setpts=N/({FPS}*TB)"
    audio_filter = f"atrim=end={frames / FPS:.3f},asetpts=N/SR/TB"
    _ffmpeg("-i", str(source), "-vf", video_filter, "-af", audio_filter, "-r", str(FPS), "-c:v", "libx264", "-crf", "1",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(target))  # fmt: skip
    return target


def cut_audio(source: Path, target: Path, start: float, seconds: float) -> Path:
    _ffmpeg("-ss", f"{start:.3f}", "-i", str(source), "-t", f"{seconds:.3f}", "-c:a", "pcm_s16le", str(target))
    return target


def still_image(target: Path) -> Path:
    """A real frontal portrait (scikit-image's astronaut, 512x512) as PNG."""
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(target)
    return target


def prepare_media(server, video: Path, speech: Path, folder: Path) -> Media:
    """Cut the real media, upload each file through ``/upload/image`` and return paths and widget values."""

    def upload(path: Path) -> Clip:
        return Clip(path, server.upload(path))

    return Media(
        video=upload(cut_video(video, folder / "talking_head.mp4", FRAMES)),
        speech=upload(cut_audio(speech, folder / "speech.wav", 0.0, SPEECH_SECONDS)),
        other_speech=upload(cut_audio(speech, folder / "other_speech.wav", OTHER_SPEECH_START, SPEECH_SECONDS)),
        short_video=upload(cut_video(video, folder / "talking_head_short.mp4", SHORT_FRAMES)),
        short_speech=upload(cut_audio(speech, folder / "speech_short.wav", 0.0, SHORT_SPEECH_SECONDS)),
        short_other_speech=upload(cut_audio(speech, folder / "other_speech_short.wav", OTHER_SPEECH_START, SHORT_SPEECH_SECONDS)),
        still=upload(still_image(folder / "portrait.png")),
    )


@dataclass(frozen=True)
class VideoFile:
    frames: np.ndarray  # [n, h, w, 3] uint8 RGB
    fps: float
    duration: float  # seconds, the container's
    audio_seconds: float | None  # decoded length of the first audio stream, None without one


def read_video(path: Path) -> VideoFile:
    """Decode every frame and the audio length of a result file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
    audio_seconds = None
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio))
            audio_seconds = samples / audio.rate
    return VideoFile(frames, fps, duration, audio_seconds)


def read_image(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")

"""A tiny synthetic talking head for training tests: a drawn face whose mouth opens with the audio envelope."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from helpers import write_audio, write_video

SAMPLE_RATE = 16000
FPS = 25


def syllable_envelope(seconds: float, seed: int) -> np.ndarray:
    """Per-sample loudness 0..1: random syllables of 0.12-0.3 s with pauses, like speech."""
    rng = np.random.default_rng(seed)
    envelope = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    position = int(0.05 * SAMPLE_RATE)
    while position < envelope.size:
        length = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
        window = np.sin(np.linspace(0, np.pi, length)) ** 2 * rng.uniform(0.5, 1.0)
        envelope[position : position + length] = window[: envelope.size - position]
        position += length + int(rng.uniform(0.04, 0.2) * SAMPLE_RATE)
    return envelope


def draw_face(size: int, opening: float) -> np.ndarray:
    """RGB uint8 face: skin oval, eyes, and a dark mouth whose height is ``opening`` (0..1)."""
    frame = np.full((size, size, 3), (40, 60, 90), np.uint8)
    centre = size // 2
    cv2.ellipse(frame, (centre, centre), (int(size * 0.36), int(size * 0.46)), 0, 0, 360, (220, 180, 150), -1)
    for x in (centre - size // 7, centre + size // 7):
        cv2.circle(frame, (x, int(size * 0.38)), max(2, size // 20), (30, 30, 30), -1)
    mouth_height = 1 + int(opening * size * 0.12)
    cv2.ellipse(frame, (centre, int(size * 0.72)), (size // 6, mouth_height), 0, 0, 360, (90, 20, 30), -1)
    return frame


def write_talking_clip(folder: Path, name: str = "talker", seconds: float = 2.0, size: int = 96, seed: int = 0) -> Path:
    """Write ``folder/name.mkv`` (25 fps H.264 with its speech as PCM, sample-exact) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    envelope = syllable_envelope(seconds, seed)
    t = np.arange(envelope.size) / SAMPLE_RATE
    voiced = sum(np.sin(2 * np.pi * k * 150 * t) / k for k in range(1, 6))
    speech = (0.3 * voiced * envelope).astype(np.float32)
    # The mouth follows the loudness at the middle of each frame's 0.2 s mel window.
    frames = []
    for index in range(int(seconds * FPS)):
        centre = min(envelope.size - 1, int((index / FPS + 0.1) * SAMPLE_RATE))
        frames.append(draw_face(size, float(envelope[centre])))
    video = write_video(folder / f"{name}.video.mp4", frames, fps=FPS)
    audio = write_audio(folder / f"{name}.wav", speech[None], SAMPLE_RATE)
    return mux(video, audio, folder / f"{name}.mkv")


def mux(video: Path, audio: Path, output: Path) -> Path:
    """Copy the video stream and the PCM audio into one mkv, then remove the inputs."""
    import av

    with av.open(str(video)) as video_in, av.open(str(audio)) as audio_in, av.open(str(output), "w") as out:
        video_stream = out.add_stream_from_template(video_in.streams.video[0])
        audio_stream = out.add_stream_from_template(audio_in.streams.audio[0])
        for source, stream in ((video_in, video_stream), (audio_in, audio_stream)):
            for packet in source.demux(source.streams[0]):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)
    video.unlink()
    audio.unlink()
    return output

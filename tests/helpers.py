"""Helpers for tests: random BatchNorm statistics and writers for small synthetic media files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from lipsync.faces.detector import FaceDetector

# A box around the face in the example clip, as the reference's (top, bottom, left, right).
EXAMPLE_FACE_BOX = (150, 430, 460, 720)


def reference_hard_paste(frame: np.ndarray, face: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """The reference's paste-back (Wav2Lip ``inference.py``): ``p = cv2.resize(p.astype(np.uint8), (x2 - x1, y2 - y1));
    f[y1:y2, x1:x2] = p`` after ``p = pred * 255``, a truncating cast; here for one float RGB face in 0..1, in place."""
    import cv2

    x1, y1, x2, y2 = box
    frame[y1:y2, x1:x2] = cv2.resize((face * 255.0).astype(np.uint8), (x2 - x1, y2 - y1))


def randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BatchNorm layers non-trivial statistics, as trained checkpoints have."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(torch.rand(size, generator=generator) * 0.6 - 0.3)
                module.running_var.copy_(torch.rand(size, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(size, generator=generator) * 0.4 - 0.2)
    return model.eval()


def write_video(path: Path, frames: list[np.ndarray] | np.ndarray, fps: float = 25.0, codec: str = "libx264") -> Path:
    """Encode RGB uint8 frames (near-lossless H.264 by default) for tests."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "1", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_audio(path: Path, samples: np.ndarray, sample_rate: int, codec: str = "pcm_s16le") -> Path:
    """Encode float samples ``[channels, n]`` in -1..1 with ``codec`` (wav, flac, mp3, aac)."""
    samples = np.atleast_2d(samples).astype(np.float32)
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate)
        stream.layout = layout
        fmt = stream.codec_context.codec.audio_formats[0].name
        frame_size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=sample_rate)
        for start in range(0, samples.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start : start + frame_size]), format="fltp", layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = start
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def speechlike(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic voiced, amplitude-modulated signal (mono float32), standing in for speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / sample_rate) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    return (0.2 * voiced * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


MARKER_STEP = 12  # grey level per frame index in the top-left marker of marked_frame


def marked_frame(index: int, height: int = 96, width: int = 128) -> np.ndarray:
    """A flat grey RGB frame whose 12x12 top-left block tells its index (survives H.264 at the tests' quality)."""
    frame = np.full((height, width, 3), 90, np.uint8)
    frame[:12, :12] = index * MARKER_STEP
    return frame


def marker(frame: np.ndarray) -> int:
    """The index a marked_frame carries."""
    return round(float(frame[2:10, 2:10].mean()) / MARKER_STEP)


class ScriptedDetector(FaceDetector):
    """Detections chosen per frame index (read from the frame's marker), a stand-in for S3FD on synthetic clips;
    counts the frames it was asked about."""

    def __init__(self, script) -> None:
        self.script, self.seen = script, 0

    def detect(self, frames):
        self.seen += len(frames)
        return [np.array(self.script(marker(frame)), np.float32).reshape(-1, 5) for frame in frames]


class FlatMouth(torch.nn.Module):
    """Wav2Lip's interface, painting the face mid-grey so every pasted pixel is easy to see."""

    img_size = 96

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return torch.full_like(faces[:, 3:], 0.5) + self.bias


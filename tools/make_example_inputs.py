"""Make the small example inputs the workflows use (example_inputs/), from sources this project may redistribute.

- Face: scikit-image's ``astronaut`` (NASA photograph of Eileen Collins, public domain), cropped around the face.
- Speech: CMU Flite (BSD-style licence; Debian package ``flite``), voice ``slt``, 16 kHz mono.
- Talking head: the face with its mouth opened by the speech's loudness (a remap of the lower lip), 25 fps H.264 with
  the speech as AAC, so it also serves the scoring workflow.

    apt-get install flite && python tools/make_example_inputs.py
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import soundfile
from skimage import data

logger = logging.getLogger("lipsync.make_example_inputs")
OUT = Path(__file__).resolve().parent.parent / "example_inputs"
TEXT = "Hello! This is a short example for lip sync. The mouth should follow these words."
FPS, RATE = 25, 16000
CROP = (slice(0, 288), slice(80, 368))  # rows, columns of the 512x512 photograph: the face and shoulders
MOUTH = (144, 142)  # centre of the mouth (x, y) in the crop
MOUTH_HALF_WIDTH, MAX_OPEN = 22, 9.0


def speech() -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", TEXT, "-o", str(path)], check=True)
        samples, rate = soundfile.read(path, dtype="float32")
    if rate != RATE:
        raise RuntimeError(f"flite wrote {rate} Hz, expected {RATE}")
    return samples


def openings(samples: np.ndarray, frames: int) -> np.ndarray:
    """Mouth opening 0..1 per frame: the speech's RMS over the frame, smoothed and normalised."""
    per_frame = RATE // FPS
    padded = np.pad(samples, (0, frames * per_frame - samples.size))
    rms = np.sqrt((padded.reshape(frames, per_frame) ** 2).mean(axis=1))
    rms = np.convolve(rms, [0.25, 0.5, 0.25], mode="same")
    return np.clip(rms / np.percentile(rms, 95), 0.0, 1.0)


def open_mouth(face: np.ndarray, opening: float) -> np.ndarray:
    """Pull the lower lip and chin down by up to MAX_OPEN pixels and darken the gap between the lips."""
    height, width = face.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = MOUTH
    across = np.clip(1.0 - ((xs - cx) / (MOUTH_HALF_WIDTH * 1.6)) ** 2, 0.0, 1.0)
    below = np.clip((ys - cy) / 4.0, 0.0, 1.0) * np.clip(1.0 - (ys - cy - 4) / 40.0, 0.0, 1.0)
    shift = (opening * MAX_OPEN * across * below).astype(np.float32)
    moved = cv2.remap(face, xs, ys - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    gap = np.zeros((height, width), np.float32)
    cv2.ellipse(gap, (cx, int(cy + opening * MAX_OPEN / 2)), (MOUTH_HALF_WIDTH, max(1, int(opening * MAX_OPEN / 2))), 0, 0, 360, 1.0, -1)
    gap = cv2.GaussianBlur(gap, (5, 5), 0)[..., None] * min(1.0, opening * 2)
    return (moved * (1 - gap) + np.array([60, 20, 25], np.float32) * gap).astype(np.uint8)


def write_video(path: Path, frames: list[np.ndarray], samples: np.ndarray) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "30", "preset": "slow"})
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        audio = out.add_stream("aac", rate=RATE, layout="mono")
        audio.bit_rate = 32000
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode())
        chunk = 1024
        for start in range(0, samples.size, chunk):
            piece = av.AudioFrame.from_ndarray(samples[None, start : start + chunk].copy(), format="flt", layout="mono")
            piece.sample_rate, piece.pts = RATE, start
            out.mux(audio.encode(piece))
        out.mux(audio.encode())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    OUT.mkdir(exist_ok=True)
    face = np.ascontiguousarray(data.astronaut()[CROP])
    samples = speech()
    soundfile.write(OUT / "lipsync_example_speech.wav", samples, RATE, subtype="PCM_16")
    cv2.imwrite(str(OUT / "lipsync_example_portrait.jpg"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    count = int(np.ceil(samples.size / RATE * FPS))
    frames = [open_mouth(face, opening) for opening in openings(samples, count)]
    write_video(OUT / "lipsync_example_talking_head.mp4", frames, samples)
    for path in sorted(OUT.iterdir()):
        logger.info("%s: %d bytes", path.name, path.stat().st_size)


if __name__ == "__main__":
    main()

"""End-to-end runs: real clip and speech, images, looping, truncation, failures that must leave no file."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from helpers import EXAMPLE_FACE_BOX, speechlike, write_audio, write_video
from skimage import data

from lipsync.errors import MediaError, NoFaceError
from lipsync.faces import FaceDetector
from lipsync.faces.haar import HaarDetector
from lipsync.media.audio import load_audio
from lipsync.media.read import iter_video_frames, open_frame_source
from lipsync.pipeline import LipSyncOptions, StageTimes, frame_schedule, lipsync_file
from lipsync.render.generate import Wav2LipGenerator
from lipsync.speech.mel import MelWindows, melspectrogram


class TinyGenerator(torch.nn.Module):
    """A cheap stand-in with Wav2Lip's interface, for runs that test streaming rather than the network."""

    img_size = 96

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(faces[:, 3:]) + audio.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1))


def stream_summary(path: Path) -> dict[str, tuple[str, float, int]]:
    with av.open(str(path)) as container:
        return {
            stream.type: (stream.codec_context.name, float(stream.duration * stream.time_base), stream.frames)
            for stream in container.streams
        }


def test_real_clip_with_fixed_box(tmp_path, example_video, example_speech, wav2lip_checkpoint) -> None:
    output = tmp_path / "out" / "result.mp4"
    generator = Wav2LipGenerator.from_file(wav2lip_checkpoint, batch_size=32)
    progress = []
    report = lipsync_file(
        example_video,
        example_speech,
        output,
        generator,
        None,
        LipSyncOptions(box=EXAMPLE_FACE_BOX, wav2lip_batch_size=32),
        on_progress=lambda done, total: progress.append((done, total)),
    )
    expected_frames = len(MelWindows(melspectrogram(load_audio(example_speech)), 25.0))
    assert report.frames == expected_frames == 130 and report.frames_without_face == 0
    assert progress[-1] == (130, 130) and len(progress) == -(-130 // min(32, generator.max_batch_size))
    summary = stream_summary(output)
    assert summary["video"][0] == "h264" and summary["video"][2] == 130
    assert summary["audio"][0] == "aac" and summary["audio"][1] == pytest.approx(5.2, abs=0.05)
    source = list(iter_video_frames(example_video))[:130]
    result = list(iter_video_frames(output))
    assert len(result) == 130 and result[0].shape == source[0].shape
    top, bottom, left, right = EXAMPLE_FACE_BOX
    pairs = list(zip(result, source, strict=True))
    inside = np.mean([np.abs(r[top:bottom, left:right].astype(int) - s[top:bottom, left:right]).mean() for r, s in pairs])
    outside = np.mean([np.abs(r[:top].astype(int) - s[:top]).mean() for r, s in pairs])
    assert outside < 3.0  # only compression noise outside the face box
    assert inside > 20.0  # the random generator really replaced the face


def test_decoded_frames_are_pyavs_own_rgb_conversion_of_each_frame(example_video) -> None:
    """The stream's frames go through one converter (not one built per frame): each is still exactly the RGB that
    PyAV's own conversion of that frame gives."""
    with av.open(str(example_video)) as container:
        expected = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    frames = list(iter_video_frames(example_video))
    assert len(frames) == len(expected) > 100
    assert all(np.array_equal(ours, theirs) for ours, theirs in zip(frames, expected, strict=True))


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_still_image_with_haar_detector(tmp_path, wav2lip_checkpoint) -> None:
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    speech = write_audio(tmp_path / "speech.wav", speechlike(1.2), 16000)
    output = tmp_path / "talking.mp4"
    report = lipsync_file(
        image, speech, output, Wav2LipGenerator.from_file(wav2lip_checkpoint), HaarDetector(), LipSyncOptions(image_fps=20.0)
    )
    assert report.frames == len(MelWindows(melspectrogram(load_audio(speech)), 20.0)) == 22
    assert stream_summary(output)["video"][2] == 22


def index_video(tmp_path: Path, count: int) -> Path:
    """Frames whose top-left block encodes their index, to follow looping through the schedule."""
    frames = []
    for index in range(count):
        frame = np.full((64, 96, 3), 60, np.uint8)
        frame[:16, :16] = index * 20
        frames.append(frame)
    return write_video(tmp_path / "indexed.mp4", frames, fps=25)


def scheduled_indices(source_path: Path, total: int) -> list[int]:
    source = open_frame_source(source_path)
    schedule = frame_schedule(source, total, None, LipSyncOptions(box=(20, 60, 20, 80)), StageTimes())
    return [round(frame[:16, :16].mean() / 20) for frame, _ in schedule]


def test_short_video_loops_like_the_reference(tmp_path) -> None:
    assert scheduled_indices(index_video(tmp_path, 6), 20) == [index % 6 for index in range(20)]


def test_long_video_is_truncated_to_the_audio(tmp_path) -> None:
    assert scheduled_indices(index_video(tmp_path, 12), 5) == [0, 1, 2, 3, 4]


class FailingGenerator(Wav2LipGenerator):
    """Fails on its second batch, after some frames were already encoded."""

    calls = 0

    def __call__(self, crops, mels):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("simulated failure mid-run")
        return super().__call__(crops, mels)


def test_failure_mid_run_leaves_no_output_and_keeps_old_file(tmp_path) -> None:
    video = index_video(tmp_path, 10)
    speech = write_audio(tmp_path / "speech.wav", speechlike(2.0), 16000)
    output = tmp_path / "result.mp4"
    output.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="simulated"):
        lipsync_file(
            video,
            speech,
            output,
            FailingGenerator(TinyGenerator(), batch_size=8),
            None,
            LipSyncOptions(box=(10, 60, 10, 80), wav2lip_batch_size=8),
        )
    assert output.read_bytes() == b"previous result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["indexed.mp4", "result.mp4", "speech.wav"]


def test_cancel_from_progress_callback_leaves_nothing(tmp_path) -> None:
    video = index_video(tmp_path, 10)
    speech = write_audio(tmp_path / "speech.wav", speechlike(2.0), 16000)

    def cancel(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lipsync_file(
            video,
            speech,
            tmp_path / "result.mp4",
            Wav2LipGenerator(TinyGenerator()),
            None,
            LipSyncOptions(box=(10, 60, 10, 80), wav2lip_batch_size=8),
            on_progress=cancel,
        )
    assert not any(path.name.startswith(".result") or path.name == "result.mp4" for path in tmp_path.iterdir())


class EveryOtherFrame(FaceDetector):
    def detect(self, frames):
        return [
            np.array([[10, 10, 60, 50, 0.9]], np.float32) if round(frame[:16, :16].mean() / 20) % 2 == 0 else np.zeros((0, 5), np.float32)
            for frame in frames
        ]


def test_frames_without_face_pass_through_or_stop(tmp_path) -> None:
    video = index_video(tmp_path, 10)
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.5), 16000)
    generator = Wav2LipGenerator(TinyGenerator())
    reference = LipSyncOptions(smooth=False, max_gap=0)  # the reference: no gap filling
    report = lipsync_file(video, speech, tmp_path / "kept.mp4", generator, EveryOtherFrame(), reference)
    assert report.frames == 10 and report.frames_without_face == 5
    filled = lipsync_file(video, speech, tmp_path / "filled.mp4", generator, EveryOtherFrame(), LipSyncOptions(smooth=False))
    assert filled.frames == 10 and filled.frames_without_face == 1  # the default fills the one-frame gaps; the last has no face after it
    with pytest.raises(NoFaceError, match="output frame 1"):
        lipsync_file(
            video,
            speech,
            tmp_path / "stopped.mp4",
            generator,
            EveryOtherFrame(),
            LipSyncOptions(smooth=False, max_gap=0, on_missing_face="error"),
        )
    assert not (tmp_path / "stopped.mp4").exists()


def test_unreadable_inputs_are_clear_errors(tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(MediaError):
        open_frame_source(broken)
    with pytest.raises(MediaError, match="does not exist"):
        open_frame_source(tmp_path / "nothing.mp4")
    fake_image = tmp_path / "fake.png"
    fake_image.write_bytes(b"not a png")
    with pytest.raises(MediaError, match="Cannot read"):
        open_frame_source(fake_image)


def peak_traced_memory(tmp_path: Path, frames: int) -> int:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    video = write_video(tmp_path / f"long{frames}.mp4", [np.roll(base, index, axis=1) for index in range(frames)], fps=25)
    speech = write_audio(tmp_path / f"speech{frames}.wav", speechlike(frames / 25), 16000)
    generator = Wav2LipGenerator(TinyGenerator(), batch_size=16)
    options = LipSyncOptions(box=(40, 200, 80, 240), wav2lip_batch_size=16)
    tracemalloc.start()
    try:
        report = lipsync_file(video, speech, tmp_path / f"out{frames}.mp4", generator, None, options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.frames > frames * 0.95
    return peak


def test_streaming_memory_does_not_grow_with_length(tmp_path) -> None:
    short = peak_traced_memory(tmp_path, 100)
    long = peak_traced_memory(tmp_path, 500)
    frame_bytes = 240 * 320 * 3
    # Holding every frame would add 400 frames (92 MB); streaming adds only the longer audio (~0.5 MB).
    assert long - short < 20 * frame_bytes, (short, long)

"""The H.264 writer's threads: YUV conversion ahead of the encoder and the AAC track on a thread of its own.

What the writer hands the codecs must be what a plain, single-threaded PyAV loop would hand them: the same video
planes in the same order, and the same audio samples cut into the same 1024-sample AAC frames.
"""

from __future__ import annotations

import threading
from fractions import Fraction

import av
import numpy as np
import pytest
from helpers import speechlike

from lipsync.errors import MediaError
from lipsync.media import write
from lipsync.media.audio import AudioSamples
from lipsync.media.write import VideoWriter, yuv420p_frame
from lipsync.media.yuv import rgb_to_yuv420p


def decoded_audio(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)


def plain_aac(samples: np.ndarray, rate: int, length: int, path) -> np.ndarray:
    """``samples[:, :length]`` encoded by hand: consecutive 1024-sample frames (the last one shorter), then decoded."""
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = layout
        for start in range(0, length, 1024):
            chunk = np.ascontiguousarray(samples[:, start : min(start + 1024, length)])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return decoded_audio(path)


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (322, 242), (66, 48)])
def test_the_frame_holds_exactly_the_converted_planes(width: int, height: int) -> None:
    rgb = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = yuv420p_frame(rgb)
    expected = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p")
    assert (frame.width, frame.height, frame.format.name) == (width, height, "yuv420p")
    np.testing.assert_array_equal(frame.to_ndarray(), expected.to_ndarray())


def test_a_plane_row_padded_beyond_its_width_is_filled_row_by_row() -> None:
    """Widths whose chroma rows FFmpeg pads (line size > width) must not shift the rows."""
    rgb = np.random.default_rng(7).integers(0, 256, (48, 66, 3), dtype=np.uint8)
    frame = yuv420p_frame(rgb)
    assert any(plane.line_size > plane.width for plane in frame.planes)
    planes = rgb_to_yuv420p(rgb)
    u = np.frombuffer(frame.planes[1], np.uint8).reshape(-1, frame.planes[1].line_size)[:24, :33]
    np.testing.assert_array_equal(u, planes.reshape(-1)[66 * 48 : 66 * 48 + 33 * 24].reshape(24, 33))


@pytest.mark.parametrize(("seconds", "frames", "pad"), [(2.0, 30, False), (0.5, 30, True), (0.5, 30, False)])
def test_the_audio_track_is_the_speech_cut_at_the_video_length(tmp_path, seconds: float, frames: int, pad: bool) -> None:
    """Longer speech is cut at the video's end; shorter speech ends there (padded with silence when asked)."""
    rate = 44100
    samples = np.stack([speechlike(seconds, rate), 0.5 * speechlike(seconds, rate)]).astype(np.float32)
    with VideoWriter(tmp_path / "out.mp4", 25, 64, 48, audio_path=AudioSamples(samples, rate), pad_audio=pad) as writer:
        for index in range(frames):
            writer.write(np.full((48, 64, 3), 8 * index, np.uint8))
    video_samples = frames * rate // 25
    if pad:
        samples = np.concatenate([samples, np.zeros((2, video_samples), np.float32)], axis=1)
    expected = plain_aac(samples, rate, min(video_samples, samples.shape[1]), tmp_path / "plain.m4a")
    np.testing.assert_array_equal(decoded_audio(tmp_path / "out.mp4"), expected)


def test_frames_come_out_in_the_order_written_with_deep_conversion(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(write, "conversion_workers", lambda: 4)
    levels = [(37 * index) % 220 + 16 for index in range(40)]
    with VideoWriter(tmp_path / "out.mp4", 25, 64, 48) as writer:
        for level in levels:
            writer.write(np.full((48, 64, 3), level, np.uint8))
    assert writer.frames_written == len(levels)
    with av.open(str(tmp_path / "out.mp4")) as container:
        means = [frame.to_ndarray(format="gray").mean() for frame in container.decode(video=0)]
    assert len(means) == len(levels)
    assert np.abs(np.array(means) - np.array(levels)).max() < 3


def writer_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(("lipsync-audio", "lipsync-yuv"))]


def test_an_audio_failure_reaches_the_caller_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    def failing_audio(path, rate, layout):
        yield np.zeros((1, 4096), np.float32)
        raise MediaError("the speech file broke off")

    monkeypatch.setattr(write, "stream_audio", failing_audio)
    output = tmp_path / "out.mp4"
    output.write_bytes(b"an earlier result")
    samples = AudioSamples(speechlike(2.0, 16000)[None], 16000)
    with pytest.raises(MediaError, match="broke off"):
        with VideoWriter(output, 25, 64, 48, audio_path=samples) as writer:
            for index in range(50):
                writer.write(np.full((48, 64, 3), index, np.uint8))
    assert output.read_bytes() == b"an earlier result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.mp4"]
    assert writer_threads() == []


def test_leaving_by_an_exception_stops_the_threads_and_removes_the_file(tmp_path) -> None:
    samples = AudioSamples(speechlike(2.0, 16000)[None], 16000)
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "out.mp4", 25, 64, 48, audio_path=samples) as writer:
            for index in range(20):
                writer.write(np.full((48, 64, 3), index, np.uint8))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    assert writer_threads() == []

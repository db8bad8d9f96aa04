"""Detection every Nth frame, the detection cache, background decode/encode and reduced precision."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from helpers import speechlike, write_audio, write_video
from test_pipeline import TinyGenerator

from lipsync.device import autocast_dtype
from lipsync.faces import FaceDetector
from lipsync.faces.cache import CACHE_FILE, CachedDetector
from lipsync.faces.sparse import SparseDetector, interpolate_detections, key_frames
from lipsync.media.read import iter_video_frames
from lipsync.models import Wav2Lip
from lipsync.overlap import BackgroundConsumer, prefetch
from lipsync.pipeline import LipSyncOptions, lipsync_file
from lipsync.render.generate import Wav2LipGenerator


class MovingFaceDetector(FaceDetector):
    """Reads the frame index stored in pixel (0, 0) and reports a face moving 3 px a frame (and counts calls)."""

    def __init__(self, settings: str = "moving") -> None:
        self.frames_seen = 0
        self.settings = settings

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.frames_seen += len(frames)
        results = []
        for frame in frames:
            index = float(frame[0, 0, 0])
            results.append(np.array([[20 + 3 * index, 10 + index, 80 + 3 * index, 70 + index, 0.9]], np.float32))
        return results

    def settings_key(self) -> str:
        return self.settings


def indexed_frames(count: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 100, np.uint8)
        frame[0, 0] = index
        frames.append(frame)
    return frames


def test_key_frames_cover_both_ends() -> None:
    assert key_frames(16, 4) == [0, 4, 8, 12, 15]
    assert key_frames(9, 4) == [0, 4, 8]
    assert key_frames(1, 5) == [0]


def test_sparse_detection_interpolates_linear_motion_exactly() -> None:
    frames = indexed_frames(16)
    dense = MovingFaceDetector().detect(frames)
    inner = MovingFaceDetector()
    sparse = SparseDetector(inner, every=4).detect(frames)
    assert inner.frames_seen == 5
    for expected, got in zip(dense, sparse, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_interpolation_matches_faces_by_overlap_and_handles_appearing_faces() -> None:
    left = np.array([10, 10, 50, 50, 0.9], np.float32)
    right = np.array([200, 10, 240, 50, 0.8], np.float32)
    before = np.stack([left, right])
    after = np.stack([right + np.array([4, 0, 4, 0, 0]), left + np.array([2, 2, 2, 2, 0])])  # same faces, listed the other way round
    halfway = interpolate_detections(before, after, 0.5)
    np.testing.assert_allclose(halfway[0], left + np.array([1, 1, 1, 1, 0]))
    np.testing.assert_allclose(halfway[1], right + np.array([2, 0, 2, 0, 0]))
    only_after = interpolate_detections(np.zeros((0, 5), np.float32), after, 0.25)
    assert only_after.shape == (0, 5)
    assert len(interpolate_detections(np.zeros((0, 5), np.float32), after, 0.75)) == 2
    vanishing = interpolate_detections(before[:1], np.zeros((0, 5), np.float32), 0.25)
    np.testing.assert_array_equal(vanishing, before[:1])


def test_cache_skips_detection_on_the_second_pass_and_misses_on_change(tmp_path) -> None:
    frames = indexed_frames(12)
    first = MovingFaceDetector()
    expected = CachedDetector(first, tmp_path).detect(frames)
    assert first.frames_seen == 12 and (tmp_path / CACHE_FILE).is_file()

    again = MovingFaceDetector()
    cached = CachedDetector(again, tmp_path)
    got = cached.detect(frames)
    assert again.frames_seen == 0 and cached.hits == 12
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(want, have)

    other_settings = MovingFaceDetector(settings="moving, other scale")
    CachedDetector(other_settings, tmp_path).detect(frames)
    assert other_settings.frames_seen == 12

    edited = [frame.copy() for frame in frames]
    edited[3][50, 60] = 0
    partial = MovingFaceDetector()
    CachedDetector(partial, tmp_path).detect(edited)
    assert partial.frames_seen == 1


def test_unusable_cache_is_bypassed_with_a_warning(tmp_path, caplog) -> None:
    (tmp_path / CACHE_FILE).write_bytes(b"this is not a database" * 100)
    inner = MovingFaceDetector()
    cached = CachedDetector(inner, tmp_path)
    first = cached.detect(indexed_frames(4))
    cached.detect(indexed_frames(4))
    assert inner.frames_seen == 8 and len(first) == 4
    assert "unusable" in caplog.text
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("x")
    assert len(CachedDetector(MovingFaceDetector(), blocked).detect(indexed_frames(2))) == 2


def test_cache_stores_plain_float_rows(tmp_path) -> None:
    CachedDetector(MovingFaceDetector(), tmp_path).detect(indexed_frames(3))
    with sqlite3.connect(tmp_path / CACHE_FILE) as connection:
        rows = connection.execute("SELECT key, boxes FROM detections").fetchall()
    assert len(rows) == 3 and all(len(key) == 16 and len(boxes) == 5 * 4 for key, boxes in rows)


def test_second_run_with_new_audio_does_not_detect(tmp_path) -> None:
    video = write_video(tmp_path / "face.mp4", indexed_frames(20, 96, 160))
    generator = Wav2LipGenerator(TinyGenerator(), batch_size=8)
    options = LipSyncOptions(detect_every=3, detection_cache=tmp_path / "cache", smooth=False)
    first = MovingFaceDetector()
    speech_one = write_audio(tmp_path / "one.wav", speechlike(0.8, seed=1), 16000)
    first_report = lipsync_file(video, speech_one, tmp_path / "one.mp4", generator, first, options)
    assert 0 < first.frames_seen < first_report.frames

    second = MovingFaceDetector()
    speech_two = write_audio(tmp_path / "two.wav", speechlike(0.8, seed=2), 16000)
    report = lipsync_file(video, speech_two, tmp_path / "two.mp4", generator, second, options)
    assert second.frames_seen == 0 and report.frames == first_report.frames and report.frames_without_face == 0


def test_prefetch_keeps_order_and_reraises_producer_errors() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("decoder broke")

    results = prefetch(failing(), depth=2)
    assert next(results) == 1
    with pytest.raises(ValueError, match="decoder broke"):
        next(results)


def test_prefetch_stops_its_thread_when_the_consumer_leaves_early() -> None:
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 0
        finally:
            closed.set()

    results = prefetch(endless(), depth=2)
    next(results)
    results.close()
    assert closed.wait(5)
    assert not any(thread.name == "lipsync-prefetch" for thread in threading.enumerate())


def test_background_consumer_reraises_and_drops_on_error() -> None:
    seen = []
    with BackgroundConsumer(seen.append, depth=2) as consumer:
        for item in range(50):
            consumer.put(item)
    assert seen == list(range(50))

    def broken(item: int) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), BackgroundConsumer(broken, depth=2) as consumer:
        for item in range(50):
            consumer.put(item)


@pytest.mark.parametrize("overlap", [True, False])
def test_encoder_failure_leaves_no_output(tmp_path, monkeypatch, overlap: bool) -> None:
    from lipsync.media import write as encode

    video = write_video(tmp_path / "face.mp4", indexed_frames(20, 96, 160))
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.8), 16000)
    calls = []

    def failing_write(self, frame):
        calls.append(1)
        if len(calls) == 7:
            raise OSError("disk full")

    monkeypatch.setattr(encode.VideoWriter, "write", failing_write)
    generator = Wav2LipGenerator(TinyGenerator(), batch_size=4)
    with pytest.raises(OSError, match="disk full"):
        lipsync_file(video, speech, tmp_path / "out.mp4", generator, None, LipSyncOptions(box=(0, 96, 0, 96), overlap=overlap))
    assert not (tmp_path / "out.mp4").exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_overlapped_run_writes_the_same_frames_as_the_serial_one(tmp_path, monkeypatch) -> None:
    # The frames handed to the encoder are compared, not the decoded files: libx264 with its own threads may encode
    # the same frames a little differently from run to run (a few pixels by a few levels), which says nothing about
    # the overlap. A frame encoded before its face was pasted, or twice, or out of order would differ here.
    from lipsync.media import write as encode

    video = write_video(tmp_path / "face.mp4", indexed_frames(30, 96, 160))
    speech = write_audio(tmp_path / "speech.wav", speechlike(1.4), 16000)
    generator = Wav2LipGenerator(TinyGenerator(), batch_size=4)
    written: list[np.ndarray] = []
    real_write = encode.VideoWriter.write

    def keep_a_copy(writer, frame):
        written.append(np.array(frame, copy=True))
        return real_write(writer, frame)

    monkeypatch.setattr(encode.VideoWriter, "write", keep_a_copy)
    outputs = []
    for overlap in (True, False):
        written.clear()
        output = tmp_path / f"out-{overlap}.mp4"
        lipsync_file(video, speech, output, generator, MovingFaceDetector(), LipSyncOptions(overlap=overlap, detect_every=2))
        outputs.append(np.stack(written))
        assert len(list(iter_video_frames(output))) == len(written)
    assert outputs[0].shape[0] == 32  # the speech sets the length: 1.4 s of mel at 25 fps
    assert np.count_nonzero(outputs[0][:, 1:, 1:] != 100) > 1000  # faces were pasted into the uniform frames
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_precision_choice() -> None:
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("auto", torch.device("cuda")) == torch.float16
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        autocast_dtype("fp8", torch.device("cpu"))


def test_bf16_generation_stays_close_to_fp32() -> None:
    torch.manual_seed(0)
    model = Wav2Lip().eval()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    mels = rng.standard_normal((2, 80, 16)).astype(np.float32)
    full = Wav2LipGenerator(model, precision="fp32")(crops, mels)
    reduced = Wav2LipGenerator(model, precision="bf16")(crops, mels)
    assert reduced.dtype == np.float32
    assert 0 < np.abs(full - reduced).max() < 0.05


@pytest.mark.parametrize("precision,hinted", [("auto", True), ("bf16", False), ("fp32", False)])
def test_cpu_with_bf16_units_hints_at_bf16(monkeypatch, caplog, precision: str, hinted: bool) -> None:
    """On a CPU with AMX the default run says once that --precision bf16 is faster; a chosen precision is left alone."""
    import argparse
    import logging

    from lipsync import device as device_module
    from lipsync.cli import main as cli_main
    from lipsync.render import generate

    chosen = []
    monkeypatch.setattr(device_module, "cpu_has_bf16_matrix_units", lambda: True)
    monkeypatch.setattr(generate.Wav2LipGenerator, "from_file", classmethod(lambda cls, path, **options: chosen.append(options)))
    args = argparse.Namespace(device="cpu", precision=precision, checkpoint="w.pth", wav2lip_batch_size=8, restorer=None)
    cli_logger = logging.getLogger("lipsync")  # the command line's own logger, which may not propagate after a CLI test
    cli_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="lipsync"):
            cli_main.load_models(args, need_detector=False)
    finally:
        cli_logger.removeHandler(caplog.handler)
    assert ("--precision bf16" in caplog.text) is hinted
    assert chosen[0]["precision"] == precision


def test_reduced_precision_on_the_cpu_splits_the_batch_over_the_worker_threads() -> None:
    """bf16 on the CPU runs each part of a batch on a single-threaded worker: the faces are those of one forward pass
    of the whole batch under bf16 autocast, in order, and the work ran on the workers."""
    import threading

    torch.manual_seed(0)
    model = Wav2Lip().eval()
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 255, (5, 96, 96, 3), dtype=np.uint8)
    mels = rng.standard_normal((5, 80, 16)).astype(np.float32)
    generator = Wav2LipGenerator(model, precision="bf16")
    if generator.pool is None:
        pytest.skip("torch cannot run single-threaded per thread here, or there is one thread")
    threads = set()
    hook = generator.model.register_forward_hook(lambda *_: threads.add(threading.current_thread().name))
    try:
        split = generator(crops, mels)
    finally:
        hook.remove()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        whole = generator.model(torch.from_numpy(mels)[:, None], generator.model_input(crops))
    whole = whole.float()[:, [2, 1, 0]].permute(0, 2, 3, 1).numpy()
    assert all(name.startswith("lipsync-cpu") for name in threads) and len(threads) >= 2
    assert np.abs(split - whole).max() < 0.02  # the same faces, each in its place (bf16 rounding apart)


@pytest.mark.parametrize("has_bf16,warned", [(False, True), (True, False)])
def test_bf16_on_a_cpu_without_bf16_arithmetic_is_called_slower(monkeypatch, caplog, has_bf16: bool, warned: bool) -> None:
    import logging

    from lipsync.render import generate

    monkeypatch.setattr(generate, "cpu_computes_bf16", lambda: has_bf16)
    generate.logger.addHandler(caplog.handler)  # whatever an earlier test did to the loggers above it
    try:
        with caplog.at_level(logging.WARNING, logger=generate.logger.name):
            Wav2LipGenerator(Wav2Lip().eval(), precision="bf16")
    finally:
        generate.logger.removeHandler(caplog.handler)
    assert ("slower than fp32" in caplog.text) is warned

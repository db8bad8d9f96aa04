"""The H.264 writer's codec choice: NVENC when asked and it opens, a clean libx264 fallback otherwise, codec threads."""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest
from helpers import speechlike, write_audio, write_video
from test_pipeline import TinyGenerator

from lipsync.media import write as encode
from lipsync.media.read import iter_video_frames
from lipsync.media.write import LIBX264, NVENC, VideoWriter, choose_encoder, nvenc_failure
from lipsync.pipeline import LipSyncOptions, lipsync_file
from lipsync.render.generate import Wav2LipGenerator


def gradient_frames(count: int, height: int = 64, width: int = 96) -> list[np.ndarray]:
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    return [np.broadcast_to(ramp + 4 * index, (height, width, 3)).clip(0, 255).astype(np.uint8) for index in range(count)]


def written_codec(path) -> str:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name


def test_nvenc_that_fails_to_open_falls_back_to_libx264_with_one_log_line(monkeypatch, caplog) -> None:
    monkeypatch.setattr(encode, "nvenc_failure", lambda width, height: "no NVIDIA driver")
    with caplog.at_level(logging.INFO, logger="lipsync.media.write"):
        assert choose_encoder(NVENC, 96, 64) == LIBX264
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert "no NVIDIA driver" in caplog.records[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lipsync.media.write"):
        assert choose_encoder("auto", 96, 64) == LIBX264  # auto falls back quietly (info, not a warning)
    assert [record.levelno for record in caplog.records] == [logging.INFO]


def test_nvenc_is_chosen_when_it_opens(monkeypatch) -> None:
    monkeypatch.setattr(encode, "nvenc_failure", lambda width, height: None)
    assert choose_encoder(NVENC, 96, 64) == NVENC
    assert choose_encoder("auto", 96, 64) == NVENC
    assert choose_encoder(LIBX264, 96, 64) == LIBX264
    with pytest.raises(ValueError, match="encoder must be one of"):
        choose_encoder("h265", 96, 64)


@pytest.mark.parametrize("asked", [NVENC, "auto"])
def test_asking_for_nvenc_always_writes_a_playable_file(tmp_path, asked: str) -> None:
    """Here (no NVIDIA encoder) through the fallback; on a machine with one, through NVENC: the same frames either way."""
    frames = gradient_frames(12, 64, 96)
    output = tmp_path / "out.mp4"
    with VideoWriter(output, 25.0, 96, 64, encoder=asked) as writer:
        for frame in frames:
            writer.write(frame)
    expected = LIBX264 if nvenc_failure(96, 64) is not None else NVENC
    assert writer.codec == expected
    assert written_codec(output) == "h264"
    decoded = np.stack(list(iter_video_frames(output)))
    assert decoded.shape == (12, 64, 96, 3)
    assert np.abs(decoded.astype(np.int16) - np.stack(frames)).mean() < 3.0
    assert [path.name for path in tmp_path.iterdir()] == ["out.mp4"]  # no probe or partial file left behind


def test_the_real_nvenc_probe_answers_on_this_machine() -> None:
    """The probe opens a real codec context; it must return (None or a reason), never raise, at any size."""
    for width, height in ((96, 64), (1280, 720)):
        result = nvenc_failure(width, height)
        assert result is None or (isinstance(result, str) and result)


def test_the_writer_uses_the_codec_threads(tmp_path) -> None:
    with VideoWriter(tmp_path / "out.mp4", 25.0, 96, 64) as writer:
        writer.write(gradient_frames(1)[0])
        assert writer.codec == LIBX264
        assert writer._video.codec_context.thread_type == av.codec.context.ThreadType.AUTO


def test_cpu_pipeline_with_nvenc_asked_falls_back_and_matches_libx264(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(encode, "nvenc_failure", lambda width, height: "cannot open")
    video = write_video(tmp_path / "face.mp4", gradient_frames(10, 96, 160))
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.4), 16000)
    generator = Wav2LipGenerator(TinyGenerator(), batch_size=4)
    outputs = []
    for encoder in (NVENC, LIBX264):
        output = tmp_path / f"out-{encoder}.mp4"
        lipsync_file(video, speech, output, generator, None, LipSyncOptions(box=(0, 96, 0, 96), encoder=encoder, overlap=False))
        outputs.append(np.stack(list(iter_video_frames(output))))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    with pytest.raises(ValueError, match="encoder must be one of"):
        LipSyncOptions(encoder="x265")

"""Lip Sync Video (VIDEO -> VIDEO, streamed): the same result as the command line, Cancel leaves no file, fallbacks."""

from __future__ import annotations

import contextlib
import importlib
import io as bytes_io
import logging
import os
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import folder_paths
import numpy as np
import pytest
import torch
from comfy import model_management
from helpers import speechlike, write_audio, write_video

from lipsync.cli.main import build_parser, main
from lipsync.media.audio import decode_audio

BOX = (20, 100, 30, 130)  # top, bottom, left, right inside the 160x128 frames


def moving_frames(count: int = 30, height: int = 128, width: int = 160) -> list[np.ndarray]:
    """Smooth colour waves that move every frame (so looping and frame order show in the output; smooth so H.264 keeps them)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(count):
        channels = [128 + 90 * np.sin((x + 3 * index) / (9 + 4 * c) + c) * np.cos(y / (13 + 3 * c)) for c in range(3)]
        frames.append(np.stack(channels, axis=-1).round().astype(np.uint8))
    return frames


def read_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        assert container.streams.audio, f"{path} has no audio stream"
        rate = container.streams.audio[0].codec_context.sample_rate
        return np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1), rate


@pytest.fixture(scope="module")
def node(pack):
    return importlib.import_module("comfyui_lipsync.nodes.lipsync_video").LipSyncVideo


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict:
    """A 30-frame clip (1.2 s) and 2 s of speech, so the default loop mode repeats the video."""
    folder = tmp_path_factory.mktemp("clip")
    speech = write_audio(folder / "speech.wav", speechlike(2.0, 22050), 22050)
    samples, rate = decode_audio(speech)  # what ComfyUI's Load Audio gives for the file
    return {
        "video": write_video(folder / "face.mp4", moving_frames()),
        "speech": speech,
        "audio": {"waveform": torch.from_numpy(samples).unsqueeze(0), "sample_rate": rate},
    }


@pytest.fixture(scope="module")
def wav2lip(pack, wav2lip_checkpoint):
    load_models = importlib.import_module("comfyui_lipsync.nodes.load_models")
    target = folder_paths.get_folder_paths("wav2lip")[0]
    os.makedirs(target, exist_ok=True)
    shutil.copy(wav2lip_checkpoint, target)
    return load_models.LoadWav2Lip.execute(model_name=wav2lip_checkpoint.name)[0]


def run_node(node, video, clip: dict, wav2lip, **changes):
    """Execute with every widget at its schema default, as a fresh node in ComfyUI would be, plus ``changes``."""
    widgets = {item.id: item.default for item in node.define_schema().inputs if hasattr(item, "default")}
    widgets.update(fixed_box=",".join(map(str, BOX)), cache_detections=False)
    widgets.update(changes)
    return node.execute(video=video, audio=clip["audio"], wav2lip_model=wav2lip, **widgets)


def temp_files() -> set[str]:
    return set(os.listdir(folder_paths.get_temp_directory()))


@contextlib.contextmanager
def encoded_frames() -> Iterator[list[np.ndarray]]:
    """Record every frame handed to the H.264 encoder (the engine's output before lossy, run-to-run varying encoding)."""
    frames: list[np.ndarray] = []
    with pytest.MonkeyPatch.context() as patch:
        for module in (importlib.import_module("lipsync.media.write"), importlib.import_module("comfyui_lipsync.lipsync.media.write")):
            write = module.VideoWriter.write

            def recording(self, frame: np.ndarray, write=write) -> None:
                frames.append(frame.copy())
                write(self, frame)

            patch.setattr(module.VideoWriter, "write", recording)
        yield frames


@pytest.fixture(scope="module")
def cli_output(pack, clip, wav2lip_checkpoint, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The command line's result file and the frames it encoded."""
    output = tmp_path_factory.mktemp("cli") / "result.mp4"
    args = ["--face", str(clip["video"]), "--audio", str(clip["speech"]), "--checkpoint", str(wav2lip_checkpoint),
            "--box", *map(str, BOX), "--no-detection-cache", "-o", str(output), "-q"]  # fmt: skip
    with encoded_frames() as frames:
        assert main(args) == 0
    return output, np.stack(frames)


def run_recorded(node, video, clip: dict, wav2lip, **changes):
    with encoded_frames() as frames:
        result = run_node(node, video, clip, wav2lip, **changes)
    return result, np.stack(frames)


def test_node_output_equals_the_command_line_frame_for_frame(node, clip, wav2lip, cli_output) -> None:
    from comfy_api.latest import InputImpl

    cli_file, cli_frames = cli_output
    result, frames = run_recorded(node, InputImpl.VideoFromFile(str(clip["video"])), clip, wav2lip)
    assert frames.shape == cli_frames.shape and len(frames) > 40  # ~2 s of speech at 25 fps: the 30-frame video loops
    np.testing.assert_array_equal(frames, cli_frames)
    # Something was lip-synced: the box changed, the rest of the frame did not.
    source = np.stack(moving_frames())[np.arange(len(frames)) % 30].astype(int)
    top, bottom, left, right = BOX
    assert np.abs(frames[:, top:bottom, left:right] - source[:, top:bottom, left:right]).mean() > 20
    assert np.abs(frames[:, bottom + 8 :] - source[:, bottom + 8 :]).mean() < 3  # the input clip's own H.264 noise
    # The file: in ComfyUI's temp folder, those frames (through H.264) and the speech at its own rate, as the CLI's.
    path = Path(result[0].get_stream_source())
    assert path.parent == Path(folder_paths.get_temp_directory()) and path.suffix == ".mp4"
    decoded = read_frames(path)
    assert decoded.shape == frames.shape and np.abs(decoded.astype(int) - frames).mean() < 2
    our_audio, our_rate = read_audio(path)
    cli_audio, cli_rate = read_audio(cli_file)
    assert our_rate == cli_rate == 22050 and our_audio.shape == cli_audio.shape
    np.testing.assert_allclose(our_audio, cli_audio, atol=1e-4)
    assert result[1] == 0 and result.ui.as_dict() == {"text": (f"{len(frames)} frames at 25 fps; a face in every frame",)}


def test_cancel_between_chunks_leaves_no_file(node, clip, wav2lip, monkeypatch) -> None:
    from comfy_api.latest import InputImpl

    before = temp_files()
    seen: list[set[str]] = []

    def cancel_on_second_chunk() -> None:
        seen.append(temp_files() - before)
        if len(seen) == 2:
            raise model_management.InterruptProcessingException()

    monkeypatch.setattr(model_management, "throw_exception_if_processing_interrupted", cancel_on_second_chunk)
    with pytest.raises(model_management.InterruptProcessingException):
        run_node(node, InputImpl.VideoFromFile(str(clip["video"])), clip, wav2lip, batch_size=8)
    assert any(name.endswith(".mp4") for name in seen[1]), "the output was being written when Cancel came"
    assert temp_files() == before


def test_a_video_of_frames_falls_back_to_memory_with_the_same_result(node, clip, wav2lip, cli_output, caplog) -> None:
    from comfy_api.latest import InputImpl, Types

    frames = torch.from_numpy(read_frames(clip["video"])).float() / 255.0  # what Get Video Components holds
    video = InputImpl.VideoFromComponents(Types.VideoComponents(images=frames, frame_rate=Fraction(25), audio=clip["audio"]))
    with caplog.at_level(logging.WARNING):
        _, encoded = run_recorded(node, video, clip, wav2lip)
    assert "not a file" in caplog.text and "Load Video" in caplog.text
    np.testing.assert_array_equal(encoded, cli_output[1])


def test_a_video_in_memory_bytes_is_read_and_its_copy_removed(node, clip, wav2lip, cli_output) -> None:
    from comfy_api.latest import InputImpl

    before = temp_files()
    result, encoded = run_recorded(node, InputImpl.VideoFromFile(bytes_io.BytesIO(clip["video"].read_bytes())), clip, wav2lip)
    assert temp_files() - before == {Path(result[0].get_stream_source()).name}
    np.testing.assert_array_equal(encoded, cli_output[1])


def test_frames_without_a_face_are_reported_on_the_node(node, clip, wav2lip) -> None:
    from comfy_api.latest import InputImpl
    from comfyui_lipsync.nodes.sockets import DetectorSpec

    result, encoded = run_recorded(node, InputImpl.VideoFromFile(str(clip["video"])), clip, wav2lip, fixed_box="",
                                   face_detector=DetectorSpec("opencv"), length_mode="trim to shorter")  # fmt: skip
    assert result[1] == 30  # colour waves have no face: every frame passes through
    assert result.ui.as_dict() == {"text": ("30 frames at 25 fps; 30 without a face, left unchanged",)}
    np.testing.assert_array_equal(encoded, read_frames(clip["video"]))  # unchanged


def test_defaults_are_the_command_line_defaults(node) -> None:
    cli = build_parser().parse_args(["--face", "f", "--audio", "a", "--checkpoint", "c"])
    widgets = {item.id: item for item in node.define_schema().inputs}
    expected = {
        "pad_top": cli.pads[0], "pad_bottom": cli.pads[1], "pad_left": cli.pads[2], "pad_right": cli.pads[3],
        "smooth": not cli.nosmooth, "face_choice": cli.face_choice, "face_index": cli.face_index or 0, "detect_every": cli.detect_every,
        "max_gap": cli.max_gap, "cache_detections": not cli.no_detection_cache, "on_missing_face": cli.on_missing_face,
        "detection_batch_size": cli.face_det_batch_size, "batch_size": cli.wav2lip_batch_size, "static": cli.static,
        "resize_factor": cli.resize_factor, "rotate": cli.rotate, "crop": ",".join(map(str, cli.crop)), "length_mode": cli.length_mode,
        "paste_mode": cli.paste_mode, "mask_size": cli.mask_size, "mask_feather": cli.mask_feather, "mask_offset": cli.mask_offset,
        "colour_match": cli.colour_match, "restore_strength": cli.restore_strength, "codeformer_fidelity": cli.codeformer_fidelity,
        "crf": cli.crf,
    }  # fmt: skip
    assert {name: widgets[name].default for name in expected} == expected
    assert set(widgets["length_mode"].options) == set(build_parser()._option_string_actions["--length-mode"].choices)


def test_bad_crop_and_box_are_refused_before_running(node) -> None:
    assert node.validate_inputs(fixed_box="", crop="0,-1,0,-1") is True
    assert "crop" in node.validate_inputs(fixed_box="", crop="1,2,3")
    assert "fixed_box" in node.validate_inputs(fixed_box="a,b", crop="")


def test_speech_in_memory_is_muxed_like_a_file_of_it(tmp_path) -> None:
    """The engine's in-memory speech: 6 channels at 44.1 kHz become a mono AAC track as long as the video; empty is refused."""
    from lipsync.errors import MediaError
    from lipsync.media.audio import AudioSamples
    from lipsync.media.write import VideoWriter

    samples = np.repeat(speechlike(1.0, 44100)[None], 6, axis=0)
    with VideoWriter(tmp_path / "out.mp4", 25, 64, 48, audio_path=AudioSamples(samples, 44100)) as writer:
        for index in range(25):
            writer.write(np.full((48, 64, 3), index * 8, np.uint8))
    audio, rate = read_audio(tmp_path / "out.mp4")
    assert rate == 44100 and audio.shape[0] == 1 and abs(audio.shape[1] - 44100) <= 1024
    lag = 2048  # AAC's encoder delay is trimmed on decoding; compare the body of the signal
    np.testing.assert_allclose(np.std(audio[0, lag:-lag]), np.std(samples[0, lag:-lag]), rtol=0.1)
    with pytest.raises(MediaError, match="non-empty"):
        AudioSamples(np.zeros((1, 0), np.float32), 16000)

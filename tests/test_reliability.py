"""Bad input and faults against the command line (issue 15): exit codes 0 / 2 / 130, one line that says
what to fix, no partial file after any failure or signal, an existing output never damaged, an input
never overwritten. Signals and a full disk are tried on a real child process."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from helpers import speechlike, write_audio, write_video
from skimage import data

from lipsync.cli.main import main
from lipsync.errors import CorruptWeightsError, LipSyncError, NoFaceError, WeightsNotFoundError
from lipsync.faces.boxes import Pads
from lipsync.faces.stream import LEFT_TO_RIGHT, FaceFollower
from lipsync.media.read import iter_video_frames, open_frame_source
from lipsync.models import SyncNetColor, save_checkpoint

REPO = Path(__file__).resolve().parent.parent
BOX = ["--box", "10", "90", "20", "110"]


def small_inputs(tmp_path: Path, seconds: float = 0.6) -> tuple[Path, Path]:
    frames = [np.full((96, 128, 3), 40 + index, np.uint8) for index in range(8)]
    return write_video(tmp_path / "face.mp4", frames), write_audio(tmp_path / "speech.wav", speechlike(seconds), 16000)


def base_args(face: Path, speech: Path, checkpoint: Path) -> list[str]:
    return ["--face", str(face), "--audio", str(speech), "--checkpoint", str(checkpoint), *BOX, "-q"]


def leftovers(folder: Path) -> list[str]:
    """Hidden partial or probe files the writer or the checks may have left beside the output."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def error_line(caplog: pytest.LogCaptureFixture) -> str:
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1, errors
    return errors[0]


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "lipsync", *map(str, args)]


# --- signals and a full disk, on a real child process ---------------------------------------------


@pytest.mark.parametrize(
    ("signum", "overlap"),
    [(signal.SIGTERM, "off"), (signal.SIGHUP, "off"), (signal.SIGTERM, "on")],
    ids=["SIGTERM", "SIGHUP", "SIGTERM-encoding-on-a-thread"],
)
def test_signal_mid_run_cancels_cleanly(tmp_path, wav2lip_checkpoint, signum, overlap) -> None:
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((96, 128, 3), 90, np.uint8))
    speech = write_audio(tmp_path / "speech.wav", speechlike(6.0), 16000)
    output = tmp_path / "out" / "result.mp4"
    output.parent.mkdir()
    output.write_bytes(b"the previous result")
    args = ["--face", image, "--audio", speech, "--checkpoint", wav2lip_checkpoint, *BOX, "--fps", "60", "--wav2lip-batch-size", "4",
            "--overlap", overlap]  # fmt: skip
    child = subprocess.Popen(command(*args, "-o", output, "-q"), cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(".partial" in name for name in leftovers(output.parent)):  # the writer has started
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline, "no partial output appeared"
            time.sleep(0.02)
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr and f"cancelled by {signal.Signals(signum).name}" in stderr
    assert leftovers(output.parent) == [] and output.read_bytes() == b"the previous result"


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))


def test_full_disk_is_exit_2_naming_the_folder_and_keeps_the_old_output(tmp_path, wav2lip_checkpoint) -> None:
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    speech = write_audio(tmp_path / "speech.wav", speechlike(2.0), 16000)
    output = tmp_path / "result.mp4"
    output.write_bytes(b"old")
    args = ["--face", image, "--audio", speech, "--checkpoint", wav2lip_checkpoint, *BOX, "-o", output, "-q"]
    completed = subprocess.run(command(*args), cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=_small_file_limit)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr and f"Cannot write the output in '{tmp_path}'" in completed.stderr
    assert output.read_bytes() == b"old" and leftovers(tmp_path) == []


# --- the output path, checked before any work -----------------------------------------------------


def test_output_that_is_a_folder_is_refused_before_any_work(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    folder = tmp_path / "results"
    folder.mkdir()
    assert main([*base_args(face, speech, wav2lip_checkpoint), "-o", str(folder)]) == 2
    assert "is a folder" in error_line(caplog) and "lip-sync" not in caplog.text
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_unwritable_output_is_refused_before_the_model_loads(tmp_path, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    missing_weights = tmp_path / "not-loaded.pth"  # the output check comes first, so this is never looked at
    assert main([*base_args(face, speech, missing_weights), "-o", "/proc/lipsync-test.mp4"]) == 2
    assert "Cannot write into the folder '/proc'" in error_line(caplog)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_folder_is_refused(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main([*base_args(face, speech, wav2lip_checkpoint), "-o", str(locked / "x.mp4")]) == 2
    assert "Cannot write into the folder" in error_line(caplog)


@pytest.mark.parametrize("which", ["face", "audio", "face via another spelling"])
def test_output_that_is_an_input_is_refused(tmp_path, wav2lip_checkpoint, which, caplog, monkeypatch) -> None:
    face, speech = small_inputs(tmp_path)
    face_bytes, speech_bytes = face.read_bytes(), speech.read_bytes()
    target = {"face": face, "audio": speech}.get(which)
    if target is None:  # a relative path through a sub-folder names the same file
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        target = Path("..") / face.name
    assert main([*base_args(face, speech, wav2lip_checkpoint), "-o", str(target)]) == 2
    assert "writing there would destroy it" in error_line(caplog)
    assert face.read_bytes() == face_bytes and speech.read_bytes() == speech_bytes


def test_unsupported_output_suffix_lists_the_containers(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    assert main([*base_args(face, speech, wav2lip_checkpoint), "-o", str(tmp_path / "x.txt")]) == 2
    assert ".mp4, .mkv, .mov" in error_line(caplog)
    assert not (tmp_path / "x.txt").exists()


# --- option ranges, named at parsing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--wav2lip-batch-size", "-5"),
        ("--wav2lip-batch-size", "0"),
        ("--face-det-batch-size", "0"),
        ("--crf", "60"),
        ("--crf", "-1"),
        ("--det-max-side", "-1"),
        ("--fps", "100000"),
        ("--fps", "0"),
        ("--fps", "nan"),
        ("--resize-factor", "0"),
        ("--detect-every", "0"),
    ],
)
def test_out_of_range_options_are_named(tmp_path, wav2lip_checkpoint, option, value, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    output = tmp_path / "o.mp4"
    assert main([*base_args(face, speech, wav2lip_checkpoint), option, value, "-o", str(output)]) == 2
    assert error_line(caplog).startswith(f"{option} must be")
    assert not output.exists() and leftovers(tmp_path) == []


def test_score_batch_size_zero_is_named(tmp_path, caplog) -> None:
    face, _ = small_inputs(tmp_path)
    assert main(["score", str(face), "--syncnet", str(tmp_path / "never-read.pth"), "--batch-size", "0"]) == 2
    assert error_line(caplog).startswith("--batch-size must be at least 1")


def test_resize_factor_that_leaves_no_pixels(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    assert main([*base_args(face, speech, wav2lip_checkpoint), "--resize-factor", "1000", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "--resize-factor 1000 shrinks the 128x96 frame below 2 px; use at most 48" in error_line(caplog)


def test_bogus_device_lists_the_valid_ones(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    assert main([*base_args(face, speech, wav2lip_checkpoint), "--device", "bogus", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "Unknown device 'bogus'. Use one of: auto, cpu" in error_line(caplog)


def test_one_pixel_box_names_the_rule(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    args = ["--face", str(face), "--audio", str(speech), "--checkpoint", str(wav2lip_checkpoint), "-q"]
    assert main([*args, "--box", "10", "11", "20", "110", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "at least 2x2 px" in error_line(caplog)


# --- faces -----------------------------------------------------------------------------------------


def test_face_index_out_of_range_says_how_many_faces() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    one_face = np.array([[50.0, 20.0, 90.0, 70.0, 0.99]])
    follower = FaceFollower(Pads(), LEFT_TO_RIGHT, index=5)
    with pytest.raises(NoFaceError, match=r"Face index 5 is out of range: 1 face found .*use 0\.\.0"):
        follower(one_face, frame)
    assert FaceFollower(Pads(), LEFT_TO_RIGHT, index=0)(one_face, frame) == (50, 20, 90, 80)


def test_face_index_without_left_to_right_is_refused(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    assert main([*base_args(face, speech, wav2lip_checkpoint), "--face-index", "1", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "--face-choice 'left to right'" in error_line(caplog)


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pads", "0", "-300", "0", "0"], "leave less than 2 px of the"),
        (["--face-choice", LEFT_TO_RIGHT, "--face-index", "5"], "Face index 5 is out of range: 1 face found"),
    ],
)
def test_detected_face_options_that_cannot_hold(tmp_path, wav2lip_checkpoint, extra, message, caplog) -> None:
    portrait = tmp_path / "portrait.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(cv2.resize(data.astronaut(), (256, 256)), cv2.COLOR_RGB2BGR))
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.4), 16000)
    output = tmp_path / "o.mp4"
    args = ["--face", str(portrait), "--audio", str(speech), "--checkpoint", str(wav2lip_checkpoint), "--detector", "opencv"]
    assert main([*args, *extra, "-o", str(output), "-q"]) == 2
    assert message in error_line(caplog)
    assert not output.exists() and leftovers(tmp_path) == []


# --- inputs ----------------------------------------------------------------------------------------


def test_folders_given_as_inputs_are_called_folders(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    for flag in ("--face", "--audio"):
        args = base_args(face, speech, wav2lip_checkpoint)
        args[args.index(flag) + 1] = str(tmp_path)
        caplog.clear()
        assert main([*args, "-o", str(tmp_path / "o.mp4")]) == 2
        assert f"{flag} '{tmp_path}' is a folder" in error_line(caplog)


def test_checkpoint_folder_or_missing_path_is_named_as_given(tmp_path, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    assert main([*base_args(face, speech, tmp_path), "-o", str(tmp_path / "o.mp4")]) == 2
    assert f"The weights path '{tmp_path}' is a folder, not a weights file" in error_line(caplog)
    caplog.clear()
    missing = tmp_path / "elsewhere" / "wav2lip_gan.pth"
    assert main([*base_args(face, speech, missing), "-o", str(tmp_path / "o.mp4")]) == 2
    line = error_line(caplog)
    assert f"Model weights '{missing}' not found. Put the file in '{missing.parent}'" in line


class Payload:
    def __reduce__(self):
        return (os.system, ("echo should never run",))


@pytest.mark.parametrize("content", ["random bytes", "malicious pickle"])
def test_refused_weights_never_suggest_unsafe_loading(tmp_path, content, caplog) -> None:
    import pickle

    face, speech = small_inputs(tmp_path)
    bad = tmp_path / "wav2lip_gan.pth"
    bad.write_bytes(np.random.default_rng(0).bytes(4000) if content == "random bytes" else pickle.dumps(Payload(), protocol=2))
    assert main([*base_args(face, speech, bad), "-o", str(tmp_path / "o.mp4")]) == 2
    line = error_line(caplog)
    assert "not a weights file this pack can read safely" in line
    assert "weights_only" not in line and "Re-running" not in line and "will likely succeed" not in line


def test_non_finite_wav_is_cleaned_for_the_muxed_audio_too(tmp_path, wav2lip_checkpoint) -> None:
    face, _ = small_inputs(tmp_path)
    samples = speechlike(0.6)
    samples[2000:2400] = np.nan
    samples[5000] = np.inf
    speech = write_audio(tmp_path / "nan.wav", samples, 16000, codec="pcm_f32le")
    output = tmp_path / "o.mp4"
    assert main([*base_args(face, speech, wav2lip_checkpoint), "-o", str(output)]) == 0
    with av.open(str(output)) as container:
        rate = container.streams.audio[0].sample_rate
        audio = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)])
    assert np.isfinite(audio).all() and audio.size > 0.5 * rate * 0.6 and np.abs(audio).max() > 0.05


def test_truncated_wav_is_warned_about(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path, seconds=1.0)
    content = speech.read_bytes()
    speech.write_bytes(content[: len(content) * 6 // 10])
    assert main([*base_args(face, speech, wav2lip_checkpoint), "-o", str(tmp_path / "o.mp4")]) == 0
    assert "ends early: its header announces 1.00 s of audio but only 0.60 s" in caplog.text


# --- rotation ------------------------------------------------------------------------------------


def _rotated_video(tmp_path: Path, degrees: int) -> tuple[Path, np.ndarray]:
    """A landscape clip with a display matrix (as phones write), and the upright first frame ffmpeg itself shows."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    frame = np.zeros((48, 96, 3), np.uint8)
    frame[:16, :16] = (255, 0, 0)  # a red top-left corner tells every rotation apart
    frame[-16:, 40:56] = (0, 255, 0)
    plain = write_video(tmp_path / "plain.mp4", [frame] * 6)
    rotated = tmp_path / f"rotated{degrees}.mp4"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-display_rotation", str(degrees), "-i", plain, "-c", "copy", rotated], check=True)
    raw = subprocess.run([ffmpeg, "-loglevel", "error", "-i", rotated, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout  # fmt: skip
    return rotated, np.frombuffer(raw, np.uint8)


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_display_rotation_is_honoured(tmp_path, degrees) -> None:
    rotated, upright_bytes = _rotated_video(tmp_path, degrees)
    source = open_frame_source(rotated)
    assert (source.width, source.height) == ((48, 96) if degrees != 180 else (96, 48))
    first = next(iter_video_frames(rotated))
    assert first.shape == (source.height, source.width, 3)
    assert np.array_equal(first.reshape(-1), upright_bytes)  # what ffmpeg (and so players) show


def test_rotated_phone_video_is_written_upright(tmp_path, wav2lip_checkpoint) -> None:
    rotated, _ = _rotated_video(tmp_path, 90)
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.3), 16000)
    output = tmp_path / "o.mp4"
    args = ["--face", str(rotated), "--audio", str(speech), "--checkpoint", str(wav2lip_checkpoint), "--box", "10", "80", "4", "44"]
    assert main([*args, "-o", str(output), "-q"]) == 0
    with av.open(str(output)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (48, 96) and not frame.rotation


# --- score ---------------------------------------------------------------------------------------


def test_score_plot_suffix_is_checked_before_scoring(tmp_path, caplog) -> None:
    face, _ = small_inputs(tmp_path)
    assert main(["score", str(face), "--syncnet", str(tmp_path / "never-read.pth"), "--plot", str(tmp_path / "p.xyz")]) == 2
    assert "--plot" in error_line(caplog) and ".png" in error_line(caplog)


@pytest.fixture(scope="module")
def tiny_expert(tmp_path_factory) -> Path:
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("expert") / "lipsync_expert.pth"
    save_checkpoint(SyncNetColor().state_dict(), path)
    return path


def test_score_vshift_is_bounded_by_the_clip(tmp_path, tiny_expert, capsys, caplog) -> None:
    crops = [np.random.default_rng(index).integers(0, 255, (48, 96, 3), dtype=np.uint8) for index in range(20)]
    video = write_video(tmp_path / "crops.mp4", crops)
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.8), 16000)
    code = main(["score", str(video), "--audio", str(speech), "--syncnet", str(tiny_expert), "--input", "face-crops", "--vshift", "100000"])
    assert code == 0
    assert "reaches past this clip" in caplog.text and "100000" not in capsys.readouterr().out


# --- weights -----------------------------------------------------------------------------------------


def test_convert_creates_the_folder_and_a_readable_file(tmp_path, syncnet_checkpoint) -> None:
    output = tmp_path / "new" / "deeper" / "expert.safetensors"
    assert main(["weights", "convert", str(syncnet_checkpoint), "-o", str(output), "-q"]) == 0
    reference = tmp_path / "new" / "plain-file"
    reference.write_bytes(b"")  # any new file: the mode the umask gives
    assert (output.stat().st_mode & 0o777) == (reference.stat().st_mode & 0o777)
    assert output.stat().st_mode & 0o044  # group and others can read it, as they can the .pth
    assert leftovers(output.parent) == []


# --- the error classes ---------------------------------------------------------------------------


def test_every_error_has_one_root_and_a_stable_module_name(pack) -> None:
    from comfyui_lipsync.lipsync import errors as pack_errors

    import lipsync.errors as errors
    from lipsync.weights.download import DownloadError

    classes = [value for value in vars(pack_errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, pack_errors.LipSyncError)
        assert cls.__module__ == "lipsync.errors"  # what ComfyUI shows before the class name, wherever the pack sits
    assert DownloadError is errors.DownloadError and issubclass(DownloadError, LipSyncError)


def test_several_model_folders_are_quoted_separately() -> None:
    message = str(WeightsNotFoundError("s3fd.pth", ["/a/models/facedetection", "/b/extra/facedetection"]))
    assert "Put the file in '/a/models/facedetection' or '/b/extra/facedetection'" in message
    error = CorruptWeightsError(Path("/x/y.pth"), "cut off")
    assert "'/x/y.pth' is not a weights file this pack can read safely: cut off" in str(error)


def test_train_ranges_are_checked_before_any_work(tmp_path, caplog) -> None:
    assert main(["train", "syncnet", str(tmp_path / "no-data"), str(tmp_path / "checkpoints"), "--batch-size", "0", "-q"]) == 2
    assert error_line(caplog) == "--batch-size must be at least 1, got 0."
    assert not (tmp_path / "checkpoints").exists()


def test_node_refuses_a_malicious_file_with_a_clear_error(pack) -> None:
    import importlib
    import pickle

    import folder_paths

    load = importlib.import_module("comfyui_lipsync.nodes.load_models")
    errors = importlib.import_module("comfyui_lipsync.lipsync.errors")
    folder = Path(folder_paths.get_folder_paths("facedetection")[0])
    folder.mkdir(parents=True, exist_ok=True)
    evil = folder / "evil-reliability-test.pth"
    evil.write_bytes(pickle.dumps(Payload(), protocol=2))
    try:
        with pytest.raises(errors.CorruptWeightsError) as error:
            load.LoadFaceDetector.execute(detector=evil.name, detection_size=0)
    finally:
        evil.unlink()
    assert "not a weights file this pack can read safely" in str(error.value) and "weights_only" not in str(error.value)

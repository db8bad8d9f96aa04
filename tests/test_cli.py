"""The ``python -m lipsync`` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import speechlike, write_audio, write_video
from skimage import data

from lipsync.cli.main import main

REPO = Path(__file__).resolve().parent.parent


def small_inputs(tmp_path: Path) -> tuple[Path, Path]:
    frames = [np.full((96, 128, 3), 40 + index, np.uint8) for index in range(8)]
    return write_video(tmp_path / "face.mp4", frames), write_audio(tmp_path / "speech.wav", speechlike(0.6), 16000)


def test_module_entry_point_writes_video(tmp_path, wav2lip_checkpoint) -> None:
    face, speech = small_inputs(tmp_path)
    output = tmp_path / "result.mp4"
    command = [sys.executable, "-m", "lipsync", "--face", str(face), "--audio", str(speech), "--checkpoint_path",
               str(wav2lip_checkpoint), "--box", "10", "90", "20", "110", "-o", str(output), "-q"]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert output.stat().st_size > 1000


def test_missing_detector_weights_is_explained(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    code = main(["--face", str(face), "--audio", str(speech), "--checkpoint", str(wav2lip_checkpoint), "-o", str(tmp_path / "o.mp4")])
    assert code == 2
    assert "--s3fd" in caplog.text
    assert not (tmp_path / "o.mp4").exists()


def test_missing_checkpoint_names_the_file(tmp_path, caplog) -> None:
    face, speech = small_inputs(tmp_path)
    missing = tmp_path / "wav2lip_gan.pth"
    code = main(["--face", str(face), "--audio", str(speech), "--checkpoint", str(missing), "--box", "0", "50", "0", "50", "-q"])
    assert code == 2
    assert "wav2lip_gan.pth" in caplog.text and "not found" in caplog.text


def test_unreadable_audio_is_exit_code_2(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face, _ = small_inputs(tmp_path)
    bad = tmp_path / "speech.mp3"
    bad.write_bytes(b"\x01\x02" * 500)
    output = tmp_path / "o.mp4"
    args = ["--face", str(face), "--audio", str(bad), "--checkpoint", str(wav2lip_checkpoint), "--box", "0", "50", "0", "50"]
    assert main([*args, "-o", str(output), "-q"]) == 2
    assert "speech.mp3" in caplog.text
    assert not output.exists()


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_opencv_detector_needs_no_weights(tmp_path, wav2lip_checkpoint) -> None:
    portrait = tmp_path / "portrait.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(cv2.resize(data.astronaut(), (256, 256)), cv2.COLOR_RGB2BGR))
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.4), 16000)
    output = tmp_path / "talking.mp4"
    code = main(["--face", str(portrait), "--audio", str(speech), "--checkpoint", str(wav2lip_checkpoint), "--detector", "opencv",
                 "-o", str(output), "-q"])  # fmt: skip
    assert code == 0 and output.stat().st_size > 1000

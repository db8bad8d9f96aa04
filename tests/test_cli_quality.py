"""The command line's mask, restoration, gap and length options."""

from __future__ import annotations

import numpy as np
from helpers import speechlike, write_audio, write_video

from lipsync.cli.main import build_parser, main
from lipsync.media.read import iter_video_frames


def test_quality_flags_reach_the_run(tmp_path, wav2lip_checkpoint) -> None:
    frames = [np.full((96, 128, 3), 40 + 20 * index, np.uint8) for index in range(4)]
    face = write_video(tmp_path / "face.mp4", frames)
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.52), 16000)
    output = tmp_path / "result.mp4"
    args = ["--face", str(face), "--audio", str(speech), "--checkpoint", str(wav2lip_checkpoint), "--box", "10", "90", "20", "110",
            "--paste-mode", "mouth mask", "--mask-size", "1.2", "--mask-feather", "0.5", "--mask-offset", "0.05", "--colour-match",
            "--length-mode", "ping-pong video", "--max-gap", "3", "-o", str(output), "-q"]  # fmt: skip
    assert main(args) == 0
    result = list(iter_video_frames(output))
    assert len(result) == 10
    assert [round((int(frame[2, 2, 0]) - 40) / 20) for frame in result] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]  # ping-pong, outside the box
    parsed = build_parser().parse_args(args)
    assert parsed.paste_mode == "mouth mask" and parsed.colour_match and parsed.max_gap == 3


def test_bad_quality_options_are_exit_code_2(tmp_path, wav2lip_checkpoint, caplog) -> None:
    face = write_video(tmp_path / "face.mp4", [np.full((64, 64, 3), 80, np.uint8)] * 2)
    speech = write_audio(tmp_path / "speech.wav", speechlike(0.3), 16000)
    base = ["--face", str(face), "--audio", str(speech), "--checkpoint", str(wav2lip_checkpoint), "--box", "0", "50", "0", "50", "-q"]
    assert main([*base, "--mask-feather", "3", "-o", str(tmp_path / "a.mp4")]) == 2
    assert "feather" in caplog.text
    assert main([*base, "--restorer", str(tmp_path / "GFPGANv1.4.pth"), "-o", str(tmp_path / "b.mp4")]) == 2
    assert "GFPGANv1.4.pth" in caplog.text and "not found" in caplog.text
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()

"""SyncNet scoring from the outside: the ``score`` CLI and the Load SyncNet / Sync Score / Auto Offset nodes."""

from __future__ import annotations

import importlib
import json
import os
import shutil

import cv2
import folder_paths
import numpy as np
import pytest
import torch
from comfy import model_management
from comfy.utils import progress_log
from helpers import randomise_batchnorm, speechlike, write_audio, write_video
from skimage import data

from lipsync.cli.main import SUBCOMMANDS, main
from lipsync.models import SyncNetColor, SyncNetV2, save_checkpoint
from lipsync.sync.shift import shift_samples

FRAMES = 12
BOX = "20,150,70,190"  # top, bottom, left, right around the astronaut's face in 256x256


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict:
    """Random-weight syncnet_v2.model (legacy bare state dict) and lipsync_expert.pth (published layout)."""
    folder = tmp_path_factory.mktemp("syncnets")
    torch.manual_seed(6)
    v2 = folder / "syncnet_v2.model"
    torch.save(randomise_batchnorm(SyncNetV2(), seed=6).state_dict(), v2, _use_new_zipfile_serialization=False)
    expert = folder / "lipsync_expert.pth"
    save_checkpoint(randomise_batchnorm(SyncNetColor(), seed=7).state_dict(), expert)
    return {"v2": v2, "expert": expert}


def face_frames(count: int = FRAMES) -> np.ndarray:
    image = cv2.resize(data.astronaut(), (256, 256))
    return np.stack([np.roll(image, shift, axis=0) for shift in range(count)])


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> tuple:
    folder = tmp_path_factory.mktemp("clip")
    video = write_video(folder / "talk.mp4", list(face_frames()))
    speech = write_audio(folder / "speech.wav", speechlike(FRAMES / 25), 16000)
    return video, speech


def test_score_cli_prints_offset_lse_and_expert_score(weights, clip_files, tmp_path, capsys) -> None:
    assert SUBCOMMANDS["score"] == ".score"
    video, speech = clip_files
    report, plot = tmp_path / "score.json", tmp_path / "score.png"
    code = main(["score", str(video), "--audio", str(speech), "--syncnet", str(weights["v2"]), "--syncnet", str(weights["expert"]),
                 "--box", *BOX.split(","), "--json", str(report), "--plot", str(plot), "-q"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    for text in ("AV offset:", "Min dist (LSE-D):", "Confidence (LSE-C):", "Mean cosine (as is):"):
        assert text in out
    v2, expert = json.loads(report.read_text())
    assert (v2["model"], expert["model"]) == ("syncnet_v2", "syncnet_color")
    assert v2["windows"] == FRAMES - 5 and expert["windows"] == FRAMES - 4
    assert f"Min dist (LSE-D): {v2['lse_d']:.3f}" in out and f"Confidence (LSE-C): {v2['lse_c']:.3f}" in out
    assert -1 <= expert["min_cosine"] <= expert["max_cosine"] <= 1
    image = cv2.imread(str(plot))
    assert image.shape == (720, 960, 3)
    assert not list(tmp_path.glob(".*partial"))


def test_score_cli_errors_are_exit_code_2(weights, clip_files, wav2lip_checkpoint, tmp_path, caplog) -> None:
    video, _ = clip_files
    assert main(["score", str(video), "--syncnet", str(weights["v2"]), "-q"]) == 2
    assert "--s3fd" in caplog.text
    assert main(["score", str(video), "--syncnet", str(wav2lip_checkpoint), "--box", *BOX.split(","), "-q"]) == 2
    assert "sync expert is needed" in caplog.text
    assert main(["score", str(tmp_path / "none.mp4"), "--syncnet", str(weights["v2"]), "--box", *BOX.split(","), "-q"]) == 2
    assert "none.mp4" in caplog.text


@pytest.fixture(scope="module")
def nodes(pack, weights):
    modules = {name: importlib.import_module(f"comfyui_lipsync.nodes.{name}") for name in ("load_syncnet", "sync_score", "auto_offset")}
    target = folder_paths.get_folder_paths("syncnet")[0]
    os.makedirs(target, exist_ok=True)
    for path in weights.values():
        shutil.copy(path, target)
    return modules


def audio_input(seconds: float = FRAMES / 25, rate: int = 22050) -> dict:
    mono = torch.from_numpy(speechlike(seconds, rate, seed=3))
    return {"waveform": torch.stack([mono, mono * 0.5])[None], "sample_rate": rate}


def images() -> torch.Tensor:
    return torch.from_numpy(face_frames().astype(np.float32) / 255.0)


def load(nodes, name: str):
    return nodes["load_syncnet"].LoadSyncNet.execute(model_name=name)[0]


def test_every_new_node_has_a_complete_schema(nodes) -> None:
    classes = (nodes["load_syncnet"].LoadSyncNet, nodes["sync_score"].SyncScoreNode, nodes["auto_offset"].AutoOffset)
    for node in classes:
        schema = node.define_schema()
        schema.validate()
        assert schema.node_id.startswith("LipSync") and schema.description and schema.category.startswith("LipSync")
        assert all(item.tooltip for item in schema.inputs)
    options = nodes["load_syncnet"].LoadSyncNet.define_schema().inputs[0].options
    assert {"syncnet_v2.model", "lipsync_expert.pth"} <= set(options)


def test_loader_tells_the_two_syncnets_apart_and_refuses_others(nodes, s3fd_checkpoint) -> None:
    assert load(nodes, "syncnet_v2.model").architecture == "syncnet_v2"
    expert = load(nodes, "lipsync_expert.pth")
    assert expert.architecture == "syncnet_color" and type(expert.patcher.model).__name__ == "SyncNetColor"
    from comfyui_lipsync.lipsync.errors import UnsupportedModelError

    shutil.copy(s3fd_checkpoint, folder_paths.get_folder_paths("syncnet")[0])
    with pytest.raises(UnsupportedModelError, match="sync expert is needed"):
        load(nodes, s3fd_checkpoint.name)


def score(nodes, syncnet, **options):
    arguments = {"frames": images(), "audio": audio_input(), "fps": 25.0, "syncnet": syncnet, "input_kind": "full frames",
                 "fixed_box": BOX, "max_offset": 4, "batch_size": 4} | options  # fmt: skip
    return nodes["sync_score"].SyncScoreNode.execute(**arguments).args


def test_sync_score_node_gives_text_json_and_plot(nodes) -> None:
    progress_log.clear()
    summary, report, plot = score(nodes, load(nodes, "syncnet_v2.model"))
    figures = json.loads(report)
    assert figures["model"] == "syncnet_v2" and figures["windows"] == FRAMES - 5 and len(figures["mean_per_offset"]) == 9
    assert f"{figures['lse_d']:.3f}" in summary and f"{figures['lse_c']:.3f}" in summary
    assert plot.shape == (1, 360, 960, 3) and plot.dtype == torch.float32 and 0 <= plot.min() and plot.max() <= 1
    assert progress_log[-1] == (FRAMES - 5, FRAMES - 5)
    crops = images()[:8, 20:150, 70:190]
    _, report, _ = score(nodes, load(nodes, "lipsync_expert.pth"), frames=crops, input_kind="face crops", fixed_box="")
    figures = json.loads(report)
    assert figures["model"] == "syncnet_color" and len(figures["window_cosine"]) == 8 - 4


def test_sync_score_node_errors_and_cancel(nodes) -> None:
    node = nodes["sync_score"].SyncScoreNode
    assert "four integers" in node.validate_inputs(fixed_box="1,2")
    with pytest.raises(ValueError, match="face detector"):
        score(nodes, load(nodes, "syncnet_v2.model"), fixed_box="")
    model_management.interrupt_processing = True
    with pytest.raises(model_management.InterruptProcessingException):
        score(nodes, load(nodes, "syncnet_v2.model"))
    assert model_management.interrupt_processing is False


def test_auto_offset_shifts_the_audio_by_the_detected_offset(nodes) -> None:
    syncnet = load(nodes, "syncnet_v2.model")
    audio = audio_input()
    original = audio["waveform"].clone()
    _, report, _ = score(nodes, syncnet, audio=audio, fps=30.0)
    detected = json.loads(report)["av_offset_frames"]
    node = nodes["auto_offset"].AutoOffset
    arguments = {"frames": images(), "audio": audio, "fps": 30.0, "syncnet": syncnet, "input_kind": "full frames", "fixed_box": BOX,
                 "max_offset": 4, "batch_size": 4}  # fmt: skip
    shifted, applied = node.execute(min_confidence=0.0, **arguments).args
    assert applied == round(detected * 30 / 25)
    assert shifted["sample_rate"] == 22050 and shifted["waveform"].shape == original.shape
    expected = shift_samples(original.numpy(), detected, 25.0, 22050)
    assert np.array_equal(shifted["waveform"].numpy(), expected)
    assert torch.equal(audio["waveform"], original)
    unchanged, applied = node.execute(min_confidence=100.0, **arguments).args
    assert applied == 0 and torch.equal(unchanged["waveform"], original)


def test_score_cli_detects_faces(weights, clip_files, tmp_path, capsys, caplog) -> None:
    video, speech = clip_files
    report = tmp_path / "detected.json"
    assert main(["score", str(video), "--audio", str(speech), "--syncnet", str(weights["v2"]), "--detector", "opencv",
                 "--json", str(report), "-q"]) == 0  # fmt: skip
    assert json.loads(report.read_text())[0]["windows"] == FRAMES - 5
    blank = write_video(tmp_path / "blank.mp4", [np.full((96, 96, 3), 90, np.uint8)] * FRAMES)
    assert main(["score", str(blank), "--audio", str(speech), "--syncnet", str(weights["v2"]), "--detector", "opencv", "-q"]) == 2
    assert "No face was found" in caplog.text

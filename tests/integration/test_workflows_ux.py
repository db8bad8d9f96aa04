"""The shipped workflows in a real ComfyUI: listed once as templates with thumbnails, and each runs on the shipped
example inputs with random-weight models under the published names; face stages report frames without a face; other
packs' outputs (VideoHelperSuite, core LoadAudio / LoadImage / JoinImageWithAlpha) connect without conversion.

``lipsync_video_with_speech`` runs exactly as shipped (S3FD). The others switch the detector to OpenCV's cascade (it
finds the example's face in every frame, where random S3FD weights find arbitrary boxes) to keep the CPU time down, and
the restoration graph runs on the first frames only (restoring a face takes seconds on a CPU).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile
from integration.media import FPS, cut_audio, cut_video, read_video
from integration.server import ComfyServer
from integration.workflow_api import to_api

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
EXAMPLE_INPUTS = ROOT / "example_inputs"
MODULE = "comfyui-lipsync"  # the pack's folder name in custom_nodes (tests/integration/server.py)
SHORT_FRAMES = 6


@pytest.fixture(scope="module")
def examples(comfy: ComfyServer) -> list[str]:
    """The example inputs in the server's input/, as install.py puts them there."""
    return [comfy.upload(path) for path in sorted(EXAMPLE_INPUTS.iterdir())]


def load(name: str) -> dict:
    return json.loads((ROOT / "workflows" / f"{name}.json").read_text())


def nodes_of(workflow: dict, node_type: str) -> list[dict]:
    return [node for node in workflow["nodes"] if node["type"] == node_type]


def with_opencv(comfy: ComfyServer, workflow: dict) -> dict:
    workflow = copy.deepcopy(workflow)
    opencv = comfy.object_info["LipSyncLoadFaceDetector"]["input"]["required"]["detector"][1]["options"][-1]
    assert opencv.startswith("opencv")
    for node in nodes_of(workflow, "LipSyncLoadFaceDetector"):
        node["widgets_values"][0] = opencv
    return workflow


def node_ui(entry: dict, workflow: dict, node_type: str) -> dict:
    return entry["outputs"].get(str(nodes_of(workflow, node_type)[0]["id"]), {})


def the_video(comfy: ComfyServer, entry: dict):
    videos = [path for path in comfy.output_files(entry) if path.suffix in (".mp4", ".webm")]
    assert len(videos) == 1, comfy.output_files(entry)
    result = read_video(videos[0])
    assert result.fps == FPS and result.audio_seconds is not None
    assert abs(len(result.frames) - result.audio_seconds * FPS) <= 1.5  # the speech and the frames match
    return result


def test_each_template_is_listed_once_with_its_thumbnail(comfy: ComfyServer) -> None:
    listed = requests.get(f"{comfy.url}/api/workflow_templates", timeout=30).json()[MODULE]
    assert sorted(listed) == [path.stem for path in WORKFLOWS]  # once each: no second folder
    for path in WORKFLOWS:
        thumbnail = requests.get(f"{comfy.url}/api/workflow_templates/{MODULE}/{path.stem}.jpg", timeout=30)
        assert thumbnail.status_code == 200 and thumbnail.content == path.with_suffix(".jpg").read_bytes()
        served = requests.get(f"{comfy.url}/api/workflow_templates/{MODULE}/{path.name}", timeout=30).json()
        assert served == json.loads(path.read_text())


def test_video_with_speech_runs_as_shipped(comfy: ComfyServer, examples: list[str]) -> None:
    workflow = load("lipsync_video_with_speech")
    entry = comfy.run(to_api(workflow, comfy.object_info), timeout=1200)
    result = the_video(comfy, entry)
    assert len(result.frames) >= 110  # the speech (4.8 s) sets the length
    assert "frames" in node_ui(entry, workflow, "LipSyncDetectFaces")["text"][0]


def test_image_workflow_takes_rgba_frames_and_stereo_speech(comfy: ComfyServer, examples: list[str], tmp_path: Path) -> None:
    """All-in-One from core LoadImage through JoinImageWithAlpha (an IMAGE with 4 channels) and a stereo speech file."""
    speech, rate = soundfile.read(EXAMPLE_INPUTS / "lipsync_example_speech.wav", dtype="float32")
    stereo = tmp_path / "lipsync_stereo_speech.wav"
    soundfile.write(stereo, np.stack([speech, 0.5 * speech], axis=1), rate)
    workflow = with_opencv(comfy, load("lipsync_image_to_talking_video"))
    nodes_of(workflow, "LoadAudio")[0]["widgets_values"][0] = comfy.upload(stereo)
    prompt = to_api(workflow, comfy.object_info)
    image_id, aio_id = (str(nodes_of(workflow, kind)[0]["id"]) for kind in ("LoadImage", "LipSyncAllInOne"))
    prompt["alpha"] = {"class_type": "JoinImageWithAlpha", "inputs": {"image": [image_id, 0], "alpha": [image_id, 1]}}
    prompt[aio_id]["inputs"]["frames"] = ["alpha", 0]
    entry = comfy.run(prompt, timeout=900)
    result = the_video(comfy, entry)
    assert len(result.frames) >= 110
    assert node_ui(entry, workflow, "LipSyncAllInOne")["text"] == [f"face found in all {len(result.frames)} frames"]


def test_no_face_is_shown_on_the_node_and_warned(comfy: ComfyServer, examples: list[str], tmp_path: Path) -> None:
    import cv2

    wall = tmp_path / "lipsync_no_face.png"
    cv2.imwrite(str(wall), np.full((128, 128, 3), 128, np.uint8))
    workflow = with_opencv(comfy, load("lipsync_image_to_talking_video"))
    nodes_of(workflow, "LoadImage")[0]["widgets_values"][0] = comfy.upload(wall)
    entry = comfy.run(to_api(workflow, comfy.object_info), timeout=900)
    result = the_video(comfy, entry)
    ui = node_ui(entry, workflow, "LipSyncAllInOne")
    assert ui["text"] == [f"NO FACE in any of the {len(result.frames)} frames: output = input"]
    assert "No face found" in ui["lipsync_warning"][0]
    assert "No face found in any of the" in comfy.log()
    assert np.abs(result.frames.astype(int) - 128).max() <= 3  # passed through unchanged (up to the codec)


def test_score_workflow_runs(comfy: ComfyServer, examples: list[str]) -> None:
    workflow = with_opencv(comfy, load("lipsync_score_video"))
    entry = comfy.run(to_api(workflow, comfy.object_info), timeout=900)
    the_video(comfy, entry)
    summary = node_ui(entry, workflow, "PreviewAny")["text"][0]
    assert "offset" in summary.lower()
    assert node_ui(entry, workflow, "PreviewImage")["images"]


def test_restoration_workflow_runs_on_the_first_frames(comfy: ComfyServer, examples: list[str], tmp_path: Path) -> None:
    video = cut_video(EXAMPLE_INPUTS / "lipsync_example_talking_head.mp4", tmp_path / "lipsync_short.mp4", SHORT_FRAMES)
    speech = cut_audio(EXAMPLE_INPUTS / "lipsync_example_speech.wav", tmp_path / "lipsync_short.wav", 0.0, SHORT_FRAMES / FPS)
    workflow = with_opencv(comfy, load("lipsync_video_with_restoration"))
    nodes_of(workflow, "LoadVideo")[0]["widgets_values"][0] = comfy.upload(video)
    nodes_of(workflow, "LoadAudio")[0]["widgets_values"][0] = comfy.upload(speech)
    entry = comfy.run(to_api(workflow, comfy.object_info), timeout=900)
    frames = len(the_video(comfy, entry).frames)  # the speech sets the length (loop video): a few frames
    assert frames >= 3
    assert node_ui(entry, workflow, "LipSyncPasteFaces")["text"] == [f"face found in all {frames} frames"]
    assert f"Restoring {frames} faces on the CPU" in comfy.log()


def test_vhs_workflow_runs(vhs: ComfyServer, examples: list[str]) -> None:
    """VideoHelperSuite's Load Video -> our nodes -> its Video Combine, with no conversion node between."""
    workflow = with_opencv(vhs, load("lipsync_vhs_video"))
    kinds = {node["type"] for node in workflow["nodes"]}
    assert {"VHS_LoadVideo", "VHS_VideoCombine"} <= kinds and not kinds & {"ImageConvert", "AudioConvert"}
    entry = vhs.run(to_api(workflow, vhs.object_info), timeout=900)
    assert len(the_video(vhs, entry).frames) >= 110

"""Model names are checked when a prompt is queued: a missing, stale or placeholder name is refused with HTTP 400,
naming the file and the download command, before any node of the graph runs (issue 16, point 3)."""

from __future__ import annotations

import shutil

import pytest

from integration.graphs import lipsync_graph
from integration.media import Media
from integration.server import ComfyServer
from integration.workflow_api import default_inputs
from lipsync.weights.registry import empty_folder_placeholder


def refusal(comfy: ComfyServer, prompt: dict, node_id: str) -> str:
    """Queue the prompt, expect a 400 that blames ``node_id``, check nothing ran; returns the error's details."""
    runs_before = len(comfy.history())
    response = comfy.queue(prompt)
    assert response.status_code == 400, f"queued although it should be refused: {response.status_code} {response.text[:2000]}"
    body = response.json()
    assert set(body["node_errors"]) == {node_id}, body["node_errors"]
    errors = body["node_errors"][node_id]["errors"]
    assert [error["type"] for error in errors] == ["custom_validation_failed"], errors
    # Nothing was queued, so Detect Faces (and every other node) never ran.
    assert len(comfy.history()) == runs_before
    state = comfy.queue_state()
    assert state["queue_running"] == [] and state["queue_pending"] == []
    return errors[0]["details"]


def test_a_missing_model_is_refused_when_queued(comfy: ComfyServer, media: Media) -> None:
    prompt = lipsync_graph(comfy.object_info, media.video.name, media.speech.name)
    prompt["wav2lip"]["inputs"]["model_name"] = "wav2lip_gan_v2.pth"
    details = refusal(comfy, prompt, "wav2lip")
    assert "'wav2lip_gan_v2.pth' not found" in details
    assert str(comfy.base / "models" / "wav2lip") in details
    assert "python -m lipsync weights download" in details  # an unknown name: the command with the known files


def test_a_stale_model_name_is_refused_when_queued(comfy: ComfyServer, media: Media) -> None:
    """A file the dropdown listed but that was deleted since (the workflow was loaded before it went)."""
    folder = comfy.base / "models" / "facedetection"
    shutil.copyfile(folder / "s3fd.pth", folder / "s3fd_copy.pth")
    listed = comfy.refresh_object_info()["LipSyncLoadFaceDetector"]["input"]["required"]["detector"][1]["options"]
    assert "s3fd_copy.pth" in listed
    (folder / "s3fd_copy.pth").unlink()
    comfy.refresh_object_info()
    prompt = lipsync_graph(comfy.object_info, media.video.name, media.speech.name)
    prompt["detector"]["inputs"]["detector"] = "s3fd_copy.pth"
    details = refusal(comfy, prompt, "detector")
    assert "'s3fd_copy.pth' not found" in details and "python -m lipsync weights download" in details


@pytest.mark.parametrize(
    ("loader", "folder", "name"),
    [("LipSyncLoadSyncNet", "syncnet", "syncnet_v2.model"), ("LipSyncLoadWav2Lip", "wav2lip", "wav2lip_gan.pth")],
)
def test_the_empty_folder_placeholder_is_refused_with_the_download_command(
    comfy: ComfyServer, media: Media, loader: str, folder: str, name: str
) -> None:
    """The dropdown of an empty folder shows a placeholder; queuing it names the file to download and the command."""
    prompt = lipsync_graph(comfy.object_info, media.video.name, media.speech.name)
    if folder == "wav2lip":
        prompt["wav2lip"]["inputs"]["model_name"] = empty_folder_placeholder(folder)
        blamed = "wav2lip"
    else:
        prompt["syncnet"] = default_inputs(comfy.object_info, loader, model_name=empty_folder_placeholder(folder))
        prompt["score"] = default_inputs(comfy.object_info, "LipSyncSyncScore", frames=["components", 0], audio=["speech", 0],
                                         fps=["components", 2], syncnet=["syncnet", 0], face_detector=["detector", 0])  # fmt: skip
        prompt["show"] = default_inputs(comfy.object_info, "PreviewAny", source=["score", 0])
        # ComfyUI still runs the outputs that do not depend on a refused node, so leave only the scoring branch.
        for unused in ("mel", "detect", "crop", "generate", "paste", "create", "save", "wav2lip"):
            del prompt[unused]
        blamed = "syncnet"
    moved = []
    try:
        for path in (comfy.base / "models" / folder).iterdir():  # an empty folder for this test, as on a fresh install
            moved.append((path, path.with_name(path.name + ".away")))
            path.rename(moved[-1][1])
        spec = comfy.refresh_object_info()[loader]["input"]["required"]["model_name"]
        assert spec[1]["options"] == [empty_folder_placeholder(folder)]  # what the user sees in the dropdown
        details = refusal(comfy, prompt, blamed)
    finally:
        for original, away in moved:
            away.rename(original)
        comfy.refresh_object_info()
    assert f"'{name}' not found" in details
    assert f"python -m lipsync weights download {name} --dir {comfy.base / 'models' / folder}" in details


"""The status text face stages show on their node, and the warning when no face is found (ui output, web/lipsync_ui.js)."""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest
import torch
from skimage import data


@pytest.fixture(scope="module")
def nodes(pack):
    return {name: importlib.import_module(f"comfyui_lipsync.nodes.{name}") for name in ("detect_faces", "paste_faces", "sockets")}


def frames_with_gap(count: int, empty: range) -> torch.Tensor:
    """The astronaut's face in every frame except ``empty``, which are a flat grey wall."""
    face = cv2.resize(data.astronaut(), (256, 256)).astype(np.float32) / 255.0
    frames = np.stack([np.full_like(face, 0.5) if index in empty else face for index in range(count)])
    return torch.from_numpy(frames)


def detect(nodes, frames: torch.Tensor):
    spec = nodes["sockets"].DetectorSpec(kind="opencv")
    return nodes["detect_faces"].DetectFaces.execute(
        frames=frames, pad_top=0, pad_bottom=10, pad_left=0, pad_right=0, smooth=False, face_choice="best score",
        face_index=0, batch_size=4, fixed_box="", face_detector=spec, max_gap=0,
    )  # fmt: skip


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_detect_faces_names_the_frames_without_a_face(nodes) -> None:
    output = detect(nodes, frames_with_gap(10, range(3, 7)))
    assert output.args[1] == 4
    assert output.ui == {"text": ["no face in 4 of 10 frames (frames 3-6)"]}


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no Haar cascades (CI pins opencv<5)")
def test_detect_faces_warns_when_no_face_is_found(nodes, caplog) -> None:
    output = detect(nodes, frames_with_gap(5, range(5)))
    assert output.args[1] == 5
    assert output.ui["text"] == ["NO FACE in any of the 5 frames: output = input"]
    assert "No face found in any of the 5 frames" in output.ui["lipsync_warning"][0]
    assert "No face found" in caplog.text


def test_detect_faces_with_a_fixed_box_reports_every_frame(nodes) -> None:
    output = nodes["detect_faces"].DetectFaces.execute(
        frames=frames_with_gap(3, range(0)), pad_top=0, pad_bottom=10, pad_left=0, pad_right=0, smooth=True,
        face_choice="best score", face_index=0, batch_size=4, fixed_box="10,100,10,100",
    )  # fmt: skip
    assert output.ui == {"text": ["face found in all 3 frames"]}


def test_paste_shows_the_frames_passed_through(nodes) -> None:
    from comfyui_lipsync.lipsync.faces.track import FaceTrack

    box = (60, 40, 200, 200)
    track = FaceTrack.identity(256, 256, [box, None, None, box])
    frames, faces = frames_with_gap(4, range(0)), torch.zeros(4, 96, 96, 3)
    output = nodes["paste_faces"].PasteFaces.execute(frames=frames, faces=faces, output_track=track)
    assert output.ui == {"text": ["no face in 2 of 4 frames (frames 1-2)"]}


def test_restore_faces_on_the_cpu_reports_progress_every_face_and_an_estimate(pack, caplog) -> None:
    from comfy.utils import progress_log
    from comfyui_lipsync.lipsync.faces.track import FaceTrack
    from test_nodes_restore import frames_with_face, small_restorer_spec

    restore_nodes = {name: importlib.import_module(f"comfyui_lipsync.nodes.{name}") for name in ("restore_faces", "comfy_glue", "sockets")}
    box = (60, 40, 200, 200)
    track = FaceTrack.identity(256, 256, [box, None, box, box, box])
    progress_log.clear()
    restore_nodes["restore_faces"].RestoreFaces.execute(
        frames=frames_with_face(5), output_track=track, face_restorer=small_restorer_spec(restore_nodes), strength=1.0,
        codeformer_fidelity=0.5, mask_size=1.0, feather=0.35, vertical_offset=0.0, batch_size=4,
    )  # fmt: skip
    assert [done for done, total in progress_log] == [1, 2, 3, 4, 5]  # one step per frame, not per batch of 4
    assert "Restoring 4 faces on the CPU: about 2-12 s a face" in caplog.text

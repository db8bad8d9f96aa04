"""The example inputs the workflows load: present, small, real media, and copied into ComfyUI/input/ without overwriting."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import cv2
import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "example_inputs"


def load_install():
    spec = importlib.util.spec_from_file_location("lipsync_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_file_a_workflow_loads_is_shipped() -> None:
    shipped = {path.name for path in INPUTS.iterdir()}
    for path in sorted((ROOT / "workflows").glob("*.json")):
        for node in json.loads(path.read_text())["nodes"]:
            values = node.get("widgets_values")
            if node["type"] in ("LoadVideo", "LoadImage", "LoadAudio"):
                assert values[0] in shipped, f"{path.name}: {node['type']} loads {values[0]}"
            elif node["type"] == "VHS_LoadVideo":
                assert values["video"] in shipped, f"{path.name}: VHS_LoadVideo loads {values['video']}"
    assert sum(path.stat().st_size for path in INPUTS.iterdir()) < 400_000


def test_the_talking_head_has_a_face_in_every_frame_and_speech_of_the_same_length() -> None:
    with av.open(str(INPUTS / "lipsync_example_talking_head.mp4")) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        fps = float(container.streams.video[0].average_rate)
    speech, rate = soundfile.read(INPUTS / "lipsync_example_speech.wav")
    assert fps == 25 and rate == 16000 and speech.ndim == 1
    assert abs(len(frames) / fps - speech.size / rate) < 0.05
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = [len(cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), 1.1, 5)) for frame in frames]
    assert all(found)
    # The mouth moves: the mouth region changes between frames much more than the eyes do.
    stack = np.stack(frames).astype(np.float32)
    mouth, eyes = stack[:, 130:165, 115:175].std(axis=0).mean(), stack[:, 85:110, 110:180].std(axis=0).mean()
    assert mouth > 3 * eyes


def test_install_copies_the_inputs_once_and_never_overwrites(tmp_path: Path) -> None:
    install = load_install()
    pack = tmp_path / "ComfyUI" / "custom_nodes" / "comfyui_lipsync"
    assert install.comfyui_input_folder(pack) == tmp_path / "ComfyUI" / "input"
    assert install.comfyui_input_folder(tmp_path / "elsewhere") is None
    target = tmp_path / "ComfyUI" / "input"
    target.mkdir(parents=True)
    (target / "lipsync_example_speech.wav").write_bytes(b"the user's own file")
    copied = install.copy_example_inputs(target)
    assert sorted(path.name for path in copied) == ["lipsync_example_portrait.jpg", "lipsync_example_talking_head.mp4"]
    assert (target / "lipsync_example_speech.wav").read_bytes() == b"the user's own file"
    assert (target / "lipsync_example_portrait.jpg").read_bytes() == (INPUTS / "lipsync_example_portrait.jpg").read_bytes()
    assert install.copy_example_inputs(target) == []

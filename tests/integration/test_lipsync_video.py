"""Lip Sync Video in a real ComfyUI: the shipped workflow (Load Video -> Lip Sync Video -> Save Video) on a short clip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from helpers import EXAMPLE_FACE_BOX
from integration.media import FRAMES, Media, read_video
from integration.server import ComfyServer, status_messages
from integration.workflow_api import to_api

from lipsync.cli.main import main

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "lipsync_video_streaming.json"


def node_of(prompt: dict, class_type: str) -> tuple[str, dict]:
    [(node_id, node)] = [(node_id, node) for node_id, node in prompt.items() if node["class_type"] == class_type]
    return node_id, node


def streaming_prompt(comfy: ComfyServer, video: str, speech: str, **changes) -> dict:
    """The shipped workflow on ``video`` and ``speech``, with a fixed box (the random-weight detector finds no real face)."""
    prompt = to_api(json.loads(WORKFLOW.read_text()), comfy.object_info)
    node_of(prompt, "LoadVideo")[1]["inputs"]["file"] = video
    node_of(prompt, "LoadAudio")[1]["inputs"]["audio"] = speech
    node_of(prompt, "LipSyncVideo")[1]["inputs"].update(fixed_box=",".join(map(str, EXAMPLE_FACE_BOX)), **changes)
    return prompt


def test_the_streaming_workflow_saves_the_lip_synced_clip_with_its_speech(
    comfy: ComfyServer, media: Media, wav2lip_checkpoint: Path, tmp_path: Path
) -> None:
    prompt = streaming_prompt(comfy, media.video.name, media.speech.name)
    lipsync_id, _ = node_of(prompt, "LipSyncVideo")
    entry = comfy.run(prompt, timeout=600)

    [saved] = comfy.output_files(entry)
    assert saved.suffix == ".mp4" and saved.is_file()
    # The command line on the same files, model and box: the same frames (up to libx264's run-to-run jitter).
    cli_file = tmp_path / "cli.mp4"
    args = ["--face", str(media.video.path), "--audio", str(media.speech.path), "--checkpoint", str(wav2lip_checkpoint),
            "--box", *map(str, EXAMPLE_FACE_BOX), "--no-detection-cache", "-o", str(cli_file), "-q"]  # fmt: skip
    assert main(args) == 0
    result, cli, source = read_video(saved), read_video(cli_file), read_video(media.video.path)
    assert result.frames.shape == cli.frames.shape and len(result.frames) >= FRAMES - 5
    assert np.abs(result.frames.astype(int) - cli.frames).mean() < 0.5
    assert (result.fps, result.duration) == (cli.fps, cli.duration), (result, cli)
    assert abs(result.duration - len(result.frames) / source.fps) < 1.5 / source.fps
    assert result.audio_seconds is not None and abs(result.audio_seconds - cli.audio_seconds) < 0.03  # the speech, muxed
    source_frames = source.frames[np.arange(len(result.frames)) % len(source.frames)]
    top, bottom, left, right = EXAMPLE_FACE_BOX
    changed = np.abs(result.frames.astype(int) - source_frames)
    assert changed[:, top:bottom, left:right].mean() > 10  # the random-weight generator's mouth replaced the face
    assert changed[:, bottom + 8 :].mean() < 3  # the rest of the frame is the clip's (through H.264 twice)
    assert entry["outputs"][lipsync_id]["text"] == [f"{len(result.frames)} frames at {source.fps:g} fps; a face in every frame"]
    # The node's own file stays in temp/ for other consumers; no partial file is left anywhere.
    assert not [path for path in comfy.base.rglob("*.partial*")]


def test_cancel_between_chunks_leaves_no_file_in_temp(comfy: ComfyServer, media: Media, example_speech: Path) -> None:
    temp = comfy.base / "temp"
    before = set(temp.iterdir()) if temp.is_dir() else set()
    # The full 5.3 s speech loops the short clip to ~130 frames, in chunks of 8: Cancel comes while the file is written.
    prompt = streaming_prompt(comfy, media.video.name, comfy.upload(example_speech, "speech_long.wav"), batch_size=8)
    prompt_id = comfy.submit(prompt)
    deadline = time.monotonic() + 300
    while not list(temp.glob(".lipsync_*.partial.mp4")):
        assert time.monotonic() < deadline, "the node never started writing its output"
        time.sleep(0.05)
    comfy.interrupt()
    entry = comfy.wait(prompt_id, timeout=300)
    assert entry["status"]["status_str"] == "error" and status_messages(entry, "execution_interrupted")
    assert set(temp.iterdir()) == before  # neither the partial file nor a finished one

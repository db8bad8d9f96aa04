"""Every workflow in workflows/, as a user shares it (UI format), converted through /object_info and run for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from integration.graphs import check_saved_video, source_frames, use_test_media, video_outputs
from integration.media import Media
from integration.server import ComfyServer
from integration.workflow_api import to_api

WORKFLOWS = sorted((Path(__file__).resolve().parents[2] / "workflows").glob("*.json"))
# Nodes that paint new mouths; a workflow without one (scoring, offset) must leave the pixels as they were.
GENERATING_NODES = {"LipSyncWav2LipGenerate", "LipSyncAllInOne", "LipSyncVideo"}


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflows/*.json"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.stem)
def test_workflow_runs_on_the_real_server(path: Path, comfy: ComfyServer, media: Media) -> None:
    prompt = to_api(json.loads(path.read_text()), comfy.object_info)
    frames = use_test_media(prompt, media, comfy.object_info)
    entry = comfy.run(prompt, timeout=600)
    videos = video_outputs(comfy.output_files(entry))
    assert videos, f"{path.name} saved no video; outputs: {entry['outputs']}"
    source = source_frames(prompt, media, frames)
    lipsynced = any(node["class_type"] in GENERATING_NODES for node in prompt.values())
    for video in videos:
        check_saved_video(video, source, frames, lipsynced=lipsynced)

"""Every workflow in workflows/, as a user shares it (UI format), converted through /object_info and run for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from integration.graphs import check_saved_video, source_frames, use_test_media, video_outputs
from integration.media import Media
from integration.server import ComfyServer
from integration.workflow_api import to_api

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
# Nodes that paint new mouths; a workflow without one (scoring, offset) must leave the pixels as they were.
GENERATING_NODES = {"LipSyncWav2LipGenerate", "LipSyncAllInOne", "LipSyncVideo"}


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflows/*.json"


def test_shipped_workflows_are_what_the_generator_makes_from_todays_nodes(comfy: ComfyServer, tmp_path: Path) -> None:
    """A default changed in a node schema reaches the shipped workflows: they must be regenerated, not left stale."""
    object_info = tmp_path / "object_info.json"
    object_info.write_text(json.dumps(comfy.object_info))
    made = tmp_path / "made"
    made.mkdir()
    command = [sys.executable, str(REPO / "tools" / "make_workflows.py"), "--object-info", str(object_info), "--out", str(made)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert sorted(path.name for path in made.glob("*.json")) == [path.name for path in WORKFLOWS]
    for path in WORKFLOWS:
        assert json.loads((made / path.name).read_text()) == json.loads(path.read_text()), (
            f"workflows/{path.name} differs from what tools/make_workflows.py makes from today's nodes: regenerate it"
        )


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

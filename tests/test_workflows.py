"""The example workflows: every node exists, every link joins matching types, widget values fit the schemas, and the
layout is readable (nodes in titled groups, stage by stage left to right, no overlaps)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
# Core ComfyUI nodes the examples use, with their output types.
CORE_OUTPUTS = {
    "LoadVideo": ["VIDEO"],
    "GetVideoComponents": ["IMAGE", "AUDIO", "FLOAT"],
    "CreateVideo": ["VIDEO"],
    "SaveVideo": [],
    "LoadAudio": ["AUDIO"],
    "LoadImage": ["IMAGE", "MASK"],
    "PreviewImage": [],
    "PreviewAny": [],
    "Note": [],
    # VideoHelperSuite (its widgets are saved as a dict)
    "VHS_LoadVideo": ["IMAGE", "INT", "AUDIO", "VHS_VIDEOINFO"],
    "VHS_VideoInfoLoaded": ["FLOAT", "INT", "FLOAT", "INT", "INT"],
    "VHS_VideoCombine": ["VHS_FILENAMES"],
}
STAGES = ["Inputs", "Faces", "Lip-sync", "Restore", "Score", "Output"]
TITLE_HEIGHT = 30  # the frontend draws a node's title above its pos
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "COMBO", "BOOLEAN"}


@pytest.fixture(scope="module")
def schemas(pack) -> dict:
    import importlib

    extension = importlib.import_module("comfyui_lipsync.nodes.extension")
    nodes = asyncio.run(_nodes(extension))
    # Node classes defined in the pack's node modules, registered or not yet (test_nodes checks the registration).
    from comfy_api.latest import io

    for path in sorted((Path(__file__).resolve().parent.parent / "nodes").glob("*.py")):
        module = importlib.import_module(f"comfyui_lipsync.nodes.{path.stem}")
        nodes += [value for value in vars(module).values() if isinstance(value, type) and issubclass(value, io.ComfyNode)]
    return {node.define_schema().node_id: node.define_schema() for node in nodes if node is not io.ComfyNode}


async def _nodes(extension) -> list:
    return await (await extension.comfy_entrypoint()).get_node_list()


def test_one_example_per_common_task() -> None:
    names = {path.stem for path in WORKFLOWS}
    assert {"lipsync_video_with_speech", "lipsync_image_to_talking_video", "lipsync_video_with_restoration", "lipsync_vhs_video",
            "lipsync_score_video", "lipsync_video_streaming"} <= names  # fmt: skip
    assert not (ROOT / "example_workflows").exists(), "ComfyUI would list every template twice"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.stem)
def test_every_template_has_a_thumbnail(path: Path) -> None:
    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.is_file() and 2_000 < thumbnail.stat().st_size < 120_000
    assert thumbnail.read_bytes()[:3] == b"\xff\xd8\xff"


def rectangle(node: dict) -> tuple[float, float, float, float]:
    x, y = node["pos"]
    width, height = node["size"]
    return x, y - TITLE_HEIGHT, x + width, y + height


def group_rectangle(group: dict) -> tuple[float, float, float, float]:
    x, y, width, height = group["bounding"]
    return x, y, x + width, y + height


def overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.stem)
def test_layout_is_grouped_by_stage_without_overlaps(path: Path) -> None:
    workflow = json.loads(path.read_text())
    nodes = workflow["nodes"]
    boxes = [rectangle(node) for node in nodes]
    for first in range(len(nodes)):
        for second in range(first + 1, len(nodes)):
            assert not overlap(boxes[first], boxes[second]), f"{nodes[first]['type']} overlaps {nodes[second]['type']}"
    groups = workflow["groups"]
    titles = [group["title"] for group in groups]
    assert titles[0] == "Inputs" and titles[-1] == "Output" and titles == sorted(titles, key=STAGES.index)
    lefts = [group["bounding"][0] for group in groups]
    assert lefts == sorted(lefts), "groups run left to right in stage order"
    for node, box in zip(nodes, boxes, strict=True):
        inside = [group for group in groups if overlap(box, group_rectangle(group))]
        assert len(inside) == 1, f"{node['type']} is not in exactly one group"
        left, top, right, bottom = group_rectangle(inside[0])
        assert left <= box[0] and box[2] <= right and top <= box[1] and box[3] <= bottom, f"{node['type']} sticks out of its group"
    for group in groups:
        notes = [node for node, box in zip(nodes, boxes, strict=True) if node["type"] == "Note" and overlap(box, group_rectangle(group))]
        assert notes and all(len(note["widgets_values"][0]) < 220 for note in notes), f"{group['title']} needs a short note"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.stem)
def test_workflow_fits_the_schemas(path: Path, schemas: dict) -> None:
    workflow = json.loads(path.read_text())
    assert workflow["version"] == 0.4
    nodes = {node["id"]: node for node in workflow["nodes"]}
    assert workflow["last_node_id"] >= max(nodes) and workflow["last_link_id"] >= max(link[0] for link in workflow["links"])
    for node in nodes.values():
        assert node["type"] in schemas or node["type"] in CORE_OUTPUTS, f"unknown node {node['type']}"
        if node["type"] not in schemas:
            assert [output["type"] for output in node["outputs"]] == CORE_OUTPUTS[node["type"]]
            continue
        assert "title" not in node or node["title"], "an empty title"
        schema = schemas[node["type"]]
        # ComfyUI's frontend lays widgets out from input_order: the required inputs, then the optional ones.
        widgets = [item for item in schema.inputs if item.io_type in WIDGET_TYPES and not item.optional]
        widgets += [item for item in schema.inputs if item.io_type in WIDGET_TYPES and item.optional]
        sockets = [item for item in schema.inputs if item.io_type not in WIDGET_TYPES]
        assert len(node["widgets_values"]) == len(widgets), f"{node['type']} widget values"
        for widget, value in zip(widgets, node["widgets_values"], strict=True):
            if widget.io_type == "COMBO" and widget.id not in ("model_name", "detector"):
                assert value in widget.options
        by_name = {item["name"]: item for item in node["inputs"]}
        for socket in sockets:
            assert socket.id in by_name, f"{node['type']} lacks input {socket.id}"
            assert by_name[socket.id]["type"] == socket.io_type
            assert socket.optional or by_name[socket.id]["link"] is not None, f"{node['type']}.{socket.id} is not connected"
        assert [output["type"] for output in node["outputs"]] == [output.io_type for output in schema.outputs]
    for link_id, source, source_slot, target, target_slot, link_type in workflow["links"]:
        output = nodes[source]["outputs"][source_slot]
        target_input = nodes[target]["inputs"][target_slot]
        assert output["type"] == link_type and target_input["type"] in (link_type, "*")
        assert link_id in output["links"] and target_input["link"] == link_id


def test_restoration_example_pastes_through_the_mask_then_restores() -> None:
    workflow = json.loads((WORKFLOWS[0].parent / "lipsync_video_with_restoration.json").read_text())
    nodes = {node["id"]: node for node in workflow["nodes"]}
    by_type = {node["type"]: node for node in nodes.values()}
    assert by_type["LipSyncPasteFaces"]["widgets_values"][0] == "mouth mask"
    links = {(nodes[source]["type"], nodes[target]["type"]) for _, source, _, target, _, _ in workflow["links"]}
    chain = [("LipSyncLoadFaceRestorer", "LipSyncRestoreFaces"), ("LipSyncPasteFaces", "LipSyncRestoreFaces"),
             ("LipSyncRestoreFaces", "CreateVideo"), ("LipSyncCropFaces", "LipSyncRestoreFaces")]  # fmt: skip
    assert set(chain) <= links

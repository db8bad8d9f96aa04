"""Lay out example workflows on a grid and write them in ComfyUI's UI format (tools/make_workflows.py describes them).

Each workflow is a list of groups (Inputs / Faces / Lip-sync / Restore / Output), left to right in stage order; a group
holds columns of nodes and a short note. Inputs, outputs and widget order come from a running ComfyUI's ``/object_info``
(with this pack and VideoHelperSuite installed), so the files match what the frontend would save:

    python tools/make_workflows.py --object-info http://127.0.0.1:8188/object_info

Node sizes are generous estimates; tests/integration/test_browser.py checks in a real frontend that no two nodes overlap.
"""

from __future__ import annotations

import argparse
import json
import logging
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("lipsync.make_workflows")
HERE = Path(__file__).resolve().parent.parent / "workflows"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
VIDEO = "lipsync_example_talking_head.mp4"
IMAGE = "lipsync_example_portrait.jpg"
SPEECH = "lipsync_example_speech.wav"
GAP_X, GAP_Y, TITLE, GROUP_PAD, GROUP_TITLE = 50, 60, 30, 20, 40
NOTE_COLOURS = {"color": "#432", "bgcolor": "#653"}
GROUP_COLOURS = {"Inputs": "#3f789e", "Faces": "#8A8", "Lip-sync": "#a1309b", "Restore": "#b58b2a", "Output": "#88A", "Score": "#b06634"}
# Sizes for nodes with previews or uploads; the rest are estimated from their sockets and widgets.
FIXED_SIZES = {
    "LoadVideo": (330, 430),  # grows to show the video once it loads
    "LoadImage": (330, 430),
    "LoadAudio": (320, 140),
    "SaveVideo": (360, 380),
    "PreviewImage": (320, 300),
    "PreviewAny": (320, 140),
    "VHS_LoadVideo": (330, 700),  # with its preview
    "VHS_VideoCombine": (340, 460),
}
EXTRA_WIDGET_VALUES = {"LoadVideo": ["image"], "LoadImage": ["image"], "LoadAudio": [None, None]}  # upload / player widgets


@dataclass
class Node:
    key: str
    type: str
    widgets: dict[str, Any] = field(default_factory=dict)
    title: str | None = None


@dataclass
class Note:
    key: str
    text: str


@dataclass
class Group:
    title: str
    columns: list[list[Node | Note]]


@dataclass
class Workflow:
    name: str
    groups: list[Group]
    links: list[tuple[str, str, str, str]]  # (source key, output name, target key, input name)


def input_specs(info: dict) -> list[tuple[str, str, dict, bool]]:
    """(name, type, options, optional) in the frontend's input order: required, then optional."""
    specs = []
    for section in ("required", "optional"):
        for name in info["input_order"].get(section, []):
            spec = info["input"][section][name]
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            specs.append((name, kind, spec[1] if len(spec) > 1 else {}, section == "optional"))
    return specs


def estimated_size(node: Node, info: dict) -> tuple[int, int]:
    if node.type in FIXED_SIZES:
        return FIXED_SIZES[node.type]
    specs = input_specs(info)
    sockets = sum(kind not in WIDGET_TYPES for _, kind, _, _ in specs)
    widgets = sum(kind in WIDGET_TYPES for _, kind, _, _ in specs)
    slots = max(sockets, len(info["output"]))
    return 330, 16 + 22 * slots + 26 * widgets


def note_size(note: Note) -> tuple[int, int]:
    lines = sum(1 + len(line) // 44 for line in note.text.splitlines())
    return 330, 40 + 18 * lines


def widget_values(node: Node, info: dict) -> list | dict:
    values = []
    if node.type.startswith("VHS_"):
        return vhs_widget_values(node, info)
    for name, kind, options, _ in input_specs(info):
        if kind not in WIDGET_TYPES:
            continue
        if name in node.widgets:
            value = node.widgets[name]
        elif "default" in options:
            value = options["default"]
        else:
            raise ValueError(f"{node.type}.{name} needs a value")
        values.append(value)
        if name in ("file", "image", "audio") and node.type in EXTRA_WIDGET_VALUES:
            values += EXTRA_WIDGET_VALUES[node.type]
    return values


def vhs_widget_values(node: Node, info: dict) -> dict:
    """VideoHelperSuite saves its widgets as a dict, with its preview's state."""
    values = {}
    for name, kind, options, _ in input_specs(info):
        if kind in WIDGET_TYPES:
            values[name] = node.widgets.get(name, options.get("default"))
    values.update({name: value for name, value in node.widgets.items() if name not in values})
    values["videopreview"] = {"hidden": False, "paused": False, "params": {}}
    return values


def build(workflow: Workflow, object_info: dict) -> dict:
    nodes, placed, groups = [], {}, []
    x = 0
    for group in workflow.groups:
        column_x, top, bottom = x + GROUP_PAD, GROUP_TITLE + TITLE, 0
        for column in group.columns:
            y, width = top, 0
            for item in column:
                if isinstance(item, Note):
                    size = note_size(item)
                    entry = {"type": "Note", "inputs": [], "outputs": [], "properties": {}, "widgets_values": [item.text], **NOTE_COLOURS}
                else:
                    info = object_info[item.type]
                    size = estimated_size(item, info)
                    entry = {"type": item.type, "properties": {"Node name for S&R": item.type}, "widgets_values": widget_values(item, info)}
                    if item.title:
                        entry["title"] = item.title
                entry = {
                    "id": len(nodes) + 1,
                    "pos": [column_x, y],
                    "size": list(size),
                    "flags": {},
                    "order": len(nodes),
                    "mode": 0,
                    **entry,
                }
                nodes.append(entry)
                placed[item.key] = entry
                y += size[1] + TITLE + GAP_Y
                width = max(width, size[0])
            bottom = max(bottom, y - GAP_Y)
            column_x += width + GAP_X
        right = column_x - GAP_X + GROUP_PAD
        groups.append({"bounding": [x, 0, right - x, bottom + GROUP_PAD], "title": group.title})
        x = right + GAP_X + 30
    height = max(group["bounding"][3] for group in groups)
    for index, group in enumerate(groups, start=1):
        group["bounding"][3] = height
        group.update({"id": index, "color": GROUP_COLOURS.get(group["title"], "#3f789e"), "font_size": 24, "flags": {}})
    for entry in nodes:
        if entry["type"] == "Note":
            continue
        info = object_info[entry["type"]]
        entry["inputs"] = []
        entry["outputs"] = [
            {"name": name, "type": kind, "links": []} for name, kind in zip(info["output_name"], info["output"], strict=True)
        ]
        for name, kind, _, _ in input_specs(info):
            if kind not in WIDGET_TYPES:
                entry["inputs"].append({"name": name, "type": kind, "link": None})
    links = []
    for source_key, output_name, target_key, input_name in workflow.links:
        source, target = placed[source_key], placed[target_key]
        slot = next(index for index, output in enumerate(source["outputs"]) if output["name"] == output_name)
        kind = source["outputs"][slot]["type"]
        inputs = [item["name"] for item in target["inputs"]]
        if input_name not in inputs:  # a widget driven by a link
            target["inputs"].append({"name": input_name, "type": kind, "widget": {"name": input_name}, "link": None})
            inputs.append(input_name)
        target_slot = inputs.index(input_name)
        link_id = len(links) + 1
        links.append([link_id, source["id"], slot, target["id"], target_slot, kind])
        source["outputs"][slot]["links"].append(link_id)
        source["outputs"][slot]["slot_index"] = slot
        target["inputs"][target_slot]["link"] = link_id
    return {
        "id": f"00000000-0000-4000-8000-{zlib.crc32(workflow.name.encode()):012d}",
        "revision": 0,
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": {"scale": 1.0, "offset": [20, 20]}},
        "version": 0.4,
    }


def main(workflows: list[Workflow]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--object-info", required=True, help="URL of a running ComfyUI's /object_info, or a saved copy")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    source = args.object_info
    if source.startswith("http"):
        with urllib.request.urlopen(source) as response:
            object_info = json.load(response)
    else:
        object_info = json.loads(Path(source).read_text())
    for workflow in workflows:
        path = args.out / f"{workflow.name}.json"
        path.write_text(json.dumps(build(workflow, object_info), indent=1) + "\n")
        logger.info("wrote %s", path)

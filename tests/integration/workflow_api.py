"""Convert a workflow in ComfyUI's UI format (what users share, ``workflows/*.json``) to the API prompt format.

This follows what the frontend (comfyui-frontend-package 1.27, ``graphToPrompt`` in
``src/utils/executionUtil.ts``) sends to ``/prompt``:

- A node's widgets are created from ``/object_info``'s ``input_order``: the required inputs, then the
  optional ones (``getOrderedInputSpecs``); an input is a widget when its type is INT, FLOAT, STRING,
  BOOLEAN or COMBO (a list of options). ``widgets_values`` holds one value per widget in that order.
- An INT widget with ``control_after_generate`` (or named ``seed`` / ``noise_seed``) and a COMBO with
  ``control_after_generate`` are followed by a "control after generate" widget ("fixed",
  "randomize"...); its value is in ``widgets_values`` but not in the prompt.
- Widgets the frontend adds itself (``upload`` buttons, ``audioUI``, VideoHelperSuite's preview) are
  not in ``input_order`` and come after all the others; they are not sent.
- A widget whose input has a link sends the link ``[source id, output slot]`` instead of its value.
- Muted nodes (mode 2) are left out; bypassed ones (mode 4) pass the input of the same type through.
  Notes and other frontend-only nodes (types that ``/object_info`` does not know) are left out;
  Reroute nodes are followed; a PrimitiveNode gives its value to the widget it feeds.
- Some packs (VideoHelperSuite) save ``widgets_values`` as an object keyed by widget name.
"""

from __future__ import annotations

from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
MUTED, BYPASSED = 2, 4
SEED_NAMES = ("seed", "noise_seed")


class WorkflowError(ValueError):
    """The workflow cannot be converted (unknown node, widget values that do not fit the node's inputs)."""


def widget_type(spec: list) -> str | None:
    """The widget type of an ``/object_info`` input spec, or None for a socket-only input."""
    kind = spec[0]
    if isinstance(kind, list):
        return "COMBO"
    return kind if kind in WIDGET_TYPES else None


def widget_layout(node_info: dict) -> list[tuple[str, bool]]:
    """The node's widgets in the frontend's order: (input name, followed by a control-after-generate widget)."""
    inputs = node_info.get("input", {})
    order = node_info.get("input_order") or {section: list(inputs.get(section, {})) for section in ("required", "optional")}
    layout = []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            spec = inputs.get(section, {}).get(name)
            if spec is None:
                continue
            kind = widget_type(spec)
            if kind is None:
                continue
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            control = bool(options.get("control_after_generate")) if kind == "COMBO" else False
            if kind == "INT":
                control = bool(options.get("control_after_generate", name in SEED_NAMES))
            layout.append((name, control))
    return layout


def widget_values(node: dict, node_info: dict) -> dict[str, Any]:
    """Widget name -> value for one UI node."""
    values = node.get("widgets_values")
    layout = widget_layout(node_info)
    if values is None:
        return {}
    if isinstance(values, dict):
        return {name: values[name] for name, _ in layout if name in values}
    result = {}
    position = 0
    for name, control in layout:
        if position >= len(values):
            raise WorkflowError(f"node {node['id']} ({node['type']}) has {len(values)} widget values; its inputs need more (no {name})")
        result[name] = values[position]
        position += 2 if control else 1
    return result


def _links(workflow: dict) -> dict[int, tuple[int, int, str]]:
    """Link id -> (source node id, source slot, type), for both the list and the object link layouts."""
    links = {}
    for link in workflow.get("links", []):
        if isinstance(link, dict):
            links[link["id"]] = (link["origin_id"], link["origin_slot"], link.get("type", "*"))
        else:
            link_id, source, slot, _target, _target_slot, kind = link[:6]
            links[link_id] = (source, slot, kind)
    return links


def to_api(workflow: dict, object_info: dict) -> dict:
    """The API prompt (``{"<id>": {"class_type", "inputs", "_meta"}}``) for a UI-format workflow."""
    if "nodes" not in workflow:
        raise WorkflowError("not a UI-format workflow (no 'nodes'); API-format files can be queued as they are")
    nodes = {node["id"]: node for node in workflow["nodes"]}
    links = _links(workflow)

    def resolve(link_id: int | None, depth: int = 0) -> list | tuple[str, Any] | None:
        """A link's source as ``[node id, slot]``, following reroutes and bypassed nodes; ("value", v) for a primitive."""
        if link_id is None or link_id not in links or depth > 64:
            return None
        source_id, slot, kind = links[link_id]
        source = nodes.get(source_id)
        if source is None:
            return None
        if source["type"] == "Reroute":
            return resolve(source["inputs"][0].get("link"), depth + 1)
        if source["type"] == "PrimitiveNode":
            values = source.get("widgets_values") or [None]
            return ("value", values[0])
        if source.get("mode") == MUTED:
            return None
        if source.get("mode") == BYPASSED:
            for candidate in source.get("inputs", []):
                if candidate.get("link") is not None and candidate.get("type") in (kind, "*"):
                    return resolve(candidate["link"], depth + 1)
            return None
        if source["type"] not in object_info:
            return None
        return [str(source_id), slot]

    prompt = {}
    for node_id, node in nodes.items():
        if node["type"] in ("Reroute", "PrimitiveNode") or node.get("mode") in (MUTED, BYPASSED):
            continue
        if node["type"] not in object_info:
            if node["type"] in ("Note", "MarkdownNote") or not node.get("outputs"):
                continue
            raise WorkflowError(f"node {node_id} is a {node['type']}, which this ComfyUI does not have (is its pack installed?)")
        inputs: dict[str, Any] = {}
        for name, value in widget_values(node, object_info[node["type"]]).items():
            inputs[name] = {"__value__": value} if isinstance(value, list) else value
        for slot in node.get("inputs", []):
            source = resolve(slot.get("link"))
            if source is None:
                continue
            if isinstance(source, tuple):
                inputs[slot["name"]] = source[1]
            else:
                inputs[slot["name"]] = source
        prompt[str(node_id)] = {"class_type": node["type"], "inputs": inputs, "_meta": {"title": node.get("title", node["type"])}}
    return prompt


def default_inputs(object_info: dict, class_type: str, **inputs: Any) -> dict:
    """An API node of ``class_type`` with every widget at its default (or first option), then ``inputs`` over them."""
    info = object_info[class_type]
    values: dict[str, Any] = {}
    for section in ("required", "optional"):
        for name, spec in info.get("input", {}).get(section, {}).items():
            kind = widget_type(spec)
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if kind == "COMBO":
                choices = spec[0] if isinstance(spec[0], list) else options.get("options", [])
                values[name] = options.get("default", choices[0] if choices else None)
            elif kind is not None and "default" in options:
                values[name] = options["default"]
    values.update(inputs)
    return {"class_type": class_type, "inputs": values}

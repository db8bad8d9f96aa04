"""The UI -> API converter against the frontend's rules (comfyui-frontend-package 1.27: getOrderedInputSpecs,
useIntWidget/useComboWidget's control_after_generate, the upload/audioUI extensions, graphToPrompt). No server needed."""

from __future__ import annotations

import pytest

from integration.workflow_api import WorkflowError, default_inputs, to_api

OBJECT_INFO = {
    "Sampler": {
        # Required inputs listed out of order in "input" (as a dict may be): input_order decides.
        "input": {
            "required": {
                "steps": ["INT", {"default": 20}],
                "model": ["MODEL", {}],
                "seed": ["INT", {"default": 0, "control_after_generate": True}],
                "sampler": [["euler", "heun"], {}],
                "scheduler": ["COMBO", {"options": ["a", "b"], "control_after_generate": True}],
            },
            "optional": {"denoise": ["FLOAT", {"default": 1.0}], "mask": ["MASK", {}]},
        },
        "input_order": {"required": ["model", "seed", "steps", "sampler", "scheduler"], "optional": ["mask", "denoise"]},
        "output": ["LATENT"],
    },
    "Loader": {"input": {"required": {"name": [["a.pth", "b.pth"], {}]}}, "input_order": {"required": ["name"]}, "output": ["MODEL"]},
    "LoadImage": {"input": {"required": {"image": [["x.png"], {"image_upload": True}]}}, "input_order": {"required": ["image"]},
                  "output": ["IMAGE", "MASK"]},
    "Legacy": {"input": {"required": {"noise_seed": ["INT", {}], "text": ["STRING", {}]}}, "output": ["STRING"]},
    "Save": {"input": {"required": {"latent": ["LATENT", {}], "prefix": ["STRING", {"default": "out"}]}},
             "input_order": {"required": ["latent", "prefix"]}, "output": []},
}  # fmt: skip


def node(node_id: int, kind: str, values, inputs=(), mode: int = 0, outputs=("X",)) -> dict:
    return {"id": node_id, "type": kind, "mode": mode, "widgets_values": values,
            "inputs": [{"name": name, "type": "*", "link": link} for name, link in inputs],
            "outputs": [{"name": name, "type": name, "links": []} for name in outputs]}  # fmt: skip


def test_widget_values_follow_input_order_with_control_after_generate_values_skipped() -> None:
    workflow = {
        "nodes": [
            node(1, "Loader", ["b.pth"]),
            # seed, its control ("randomize"), steps, sampler, scheduler, its control ("fixed"), then the optional denoise.
            node(2, "Sampler", [42, "randomize", 30, "heun", "b", "fixed", 0.5], inputs=[("model", 1), ("mask", None)]),
            node(3, "Save", ["final"], inputs=[("latent", 2)]),
        ],
        "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "LATENT"]],
    }
    prompt = to_api(workflow, OBJECT_INFO)
    assert prompt["2"]["inputs"] == {"model": ["1", 0], "seed": 42, "steps": 30, "sampler": "heun", "scheduler": "b", "denoise": 0.5}
    assert prompt["1"] == {"class_type": "Loader", "inputs": {"name": "b.pth"}, "_meta": {"title": "Loader"}}
    assert prompt["3"]["inputs"] == {"latent": ["2", 0], "prefix": "final"}


def test_legacy_seed_names_get_a_control_value_and_frontend_widgets_are_not_sent() -> None:
    workflow = {
        "nodes": [
            node(1, "Legacy", [7, "increment", "hello"]),  # no input_order: the dict order; noise_seed has a control widget
            node(2, "LoadImage", ["x.png", "image"]),  # the upload button's value comes last and is not an input
        ],
        "links": [],
    }
    prompt = to_api(workflow, OBJECT_INFO)
    assert prompt["1"]["inputs"] == {"noise_seed": 7, "text": "hello"}
    assert prompt["2"]["inputs"] == {"image": "x.png"}


def test_a_linked_widget_sends_the_link_and_muted_bypassed_reroute_primitive_and_notes_are_resolved() -> None:
    workflow = {
        "nodes": [
            node(1, "Loader", ["a.pth"]),
            {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}], "outputs": [{"name": ""}]},
            node(3, "Sampler", [1, "fixed", 20, "euler", "a", "fixed", 1.0], inputs=[("model", 2), ("steps", 3)]),
            {"id": 4, "type": "PrimitiveNode", "mode": 0, "widgets_values": [12, "fixed"], "inputs": [], "outputs": [{"name": "INT"}]},
            node(5, "Sampler", [2, "fixed", 20, "euler", "a", "fixed", 1.0], inputs=[("model", 2)], mode=4),  # bypassed
            node(6, "Save", ["x"], inputs=[("latent", 5)]),
            node(7, "Save", ["muted"], inputs=[("latent", 4)], mode=2),
            {"id": 8, "type": "Note", "mode": 0, "widgets_values": ["text"], "inputs": [], "outputs": []},
        ],
        "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 4, 0, 3, 1, "INT"], [4, 3, 0, 5, 0, "LATENT"],
                  [5, 5, 0, 6, 0, "LATENT"]],
    }  # fmt: skip
    workflow["nodes"][4]["inputs"] = [{"name": "model", "type": "MODEL", "link": None}, {"name": "latent", "type": "LATENT", "link": 4}]
    prompt = to_api(workflow, OBJECT_INFO)
    assert set(prompt) == {"1", "3", "6"}
    assert prompt["3"]["inputs"]["model"] == ["1", 0]  # through the reroute
    assert prompt["3"]["inputs"]["steps"] == 12  # the primitive's value replaces the widget's
    assert prompt["6"]["inputs"]["latent"] == ["3", 0]  # through the bypassed sampler, by type


def test_object_widget_values_too_few_values_and_unknown_nodes() -> None:
    by_name = {"nodes": [node(1, "Save", {"prefix": "p", "videopreview": {}})], "links": []}  # VideoHelperSuite's layout
    assert to_api(by_name, OBJECT_INFO)["1"]["inputs"] == {"prefix": "p"}
    with pytest.raises(WorkflowError, match="no steps"):
        to_api({"nodes": [node(1, "Sampler", [1, "fixed"])], "links": []}, OBJECT_INFO)
    with pytest.raises(WorkflowError, match="Missing"):
        to_api({"nodes": [node(1, "Missing", [])], "links": []}, OBJECT_INFO)


def test_default_inputs() -> None:
    expected = {"steps": 20, "seed": 5, "sampler": "euler", "scheduler": "a", "denoise": 1.0}
    assert default_inputs(OBJECT_INFO, "Sampler", seed=5)["inputs"] == expected

"""Load Face Restorer: GFPGAN / RestoreFormer / CodeFormer weights from models/facerestore_models, through spandrel."""

from __future__ import annotations

import os

from comfy import model_management
from comfy_api.latest import io

from ..lipsync.restore.model import describe, pick_dtype
from .comfy_glue import check_model_name, model_files, patch, read_weights, register_model_folders
from .sockets import CATEGORY, FaceRestorerModel, RestorerSpec

register_model_folders()


class LoadFaceRestorer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncLoadFaceRestorer",
            display_name="Load Face Restorer",
            category=f"{CATEGORY}/loaders",
            description="Loads GFPGANv1.3/1.4, RestoreFormer or CodeFormer (with spandrel_extra_arches installed) "
            "from models/facerestore_models. Nothing is downloaded.",
            inputs=[
                io.Combo.Input("model_name", options=model_files("facerestore_models"),
                               tooltip="GFPGANv1.4.pth, GFPGANv1.3.pth, RestoreFormer.pth or codeformer.pth in models/facerestore_models."),
            ],
            outputs=[FaceRestorerModel.Output(display_name="face_restorer")],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model_name: str | None = None) -> bool | str:
        """Refuse a missing or placeholder file when the prompt is queued, with the command that downloads it."""
        return check_model_name("facerestore_models", model_name)

    @classmethod
    def execute(cls, model_name: str) -> io.NodeOutput:
        path, state = read_weights("facerestore_models", model_name)
        model, info = describe(state, source=os.path.basename(path))
        # bf16 on CUDA where the architecture allows it, decided once here so runs never re-cast the weights.
        model = model.to(pick_dtype(info, model_management.get_torch_device()))
        return io.NodeOutput(RestorerSpec(patch(model), info))

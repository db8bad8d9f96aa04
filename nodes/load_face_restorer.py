"""Load Face Restorer: GFPGAN / RestoreFormer / CodeFormer (through spandrel) or GPEN weights from models/facerestore_models."""

from __future__ import annotations

import os

from comfy import model_management
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_RESTORE_COMPILE
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
            description="Loads GFPGANv1.3/1.4, RestoreFormer, CodeFormer (with spandrel_extra_arches installed) or "
            "GPEN-BFR-256/512/1024 from models/facerestore_models. Nothing is downloaded.",
            inputs=[
                io.Combo.Input("model_name", options=model_files("facerestore_models"),
                               tooltip="GFPGANv1.4.pth, GFPGANv1.3.pth, RestoreFormer.pth, codeformer.pth or "
                               "GPEN-BFR-512.pth (-256, -1024) in models/facerestore_models."),
                io.Boolean.Input("compile", default=DEFAULT_RESTORE_COMPILE, optional=True,
                                 tooltip="Run the restorer through torch.compile. The first run compiles for a minute or two "
                                 "(nothing shows progress meanwhile; seconds once cached), then faces restore faster (GFPGAN on "
                                 "a CPU with AMX: about 3x; on other CPUs: about 1.3x). Where it cannot compile, the plain network runs."),
            ],
            outputs=[FaceRestorerModel.Output(display_name="face_restorer")],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model_name: str | None = None) -> bool | str:
        """Refuse a missing or placeholder file when the prompt is queued, with the command that downloads it."""
        return check_model_name("facerestore_models", model_name)

    @classmethod
    def execute(cls, model_name: str, compile: bool = DEFAULT_RESTORE_COMPILE) -> io.NodeOutput:
        path, state = read_weights("facerestore_models", model_name)
        model, info = describe(state, source=os.path.basename(path))
        # bf16 where the architecture and the device allow it (pick_dtype), decided once here so runs never re-cast the weights.
        model = model.to(pick_dtype(info, model_management.get_torch_device()))
        return io.NodeOutput(RestorerSpec(patch(model), info, compile=compile))

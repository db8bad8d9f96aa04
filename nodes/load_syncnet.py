"""Load a SyncNet for scoring: syncnet_v2.model (LSE-D / LSE-C) or Wav2Lip's lipsync_expert.pth."""

from __future__ import annotations

from comfy_api.latest import io

from .comfy_glue import check_model_name, load_weights, model_files, patch, register_model_folders
from .sockets import CATEGORY, SyncNetModel, SyncNetSpec

register_model_folders()


class LoadSyncNet(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncLoadSyncNet",
            display_name="Load SyncNet",
            category=f"{CATEGORY}/loaders",
            description="Loads a SyncNet from models/syncnet: syncnet_v2.model (syncnet_python; gives the published "
            "LSE-D / LSE-C) or lipsync_expert.pth (Wav2Lip's expert colour SyncNet). The kind is told from the weights.",
            inputs=[
                io.Combo.Input("model_name", options=model_files("syncnet"),
                               tooltip="syncnet_v2.model or lipsync_expert.pth in models/syncnet."),
            ],
            outputs=[SyncNetModel.Output(display_name="syncnet")],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model_name: str | None = None) -> bool | str:
        """Refuse a missing or placeholder file when the prompt is queued, with the command that downloads it."""
        return check_model_name("syncnet", model_name)

    @classmethod
    def execute(cls, model_name: str) -> io.NodeOutput:
        descriptor = load_weights("syncnet", model_name, purpose="sync_expert")
        return io.NodeOutput(SyncNetSpec(descriptor.architecture, patch(descriptor.model)))

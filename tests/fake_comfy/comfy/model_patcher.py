"""Fake of ``comfy.model_patcher.ModelPatcher``: holds the model and its devices."""

from __future__ import annotations


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size: int = 0, weight_inplace_update: bool = False) -> None:
        self.model, self.load_device, self.offload_device, self.size = model, load_device, offload_device, size
        if getattr(model, "device", None) is None:
            model.device = offload_device

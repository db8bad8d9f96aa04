"""Fake of ``comfy.model_management``: CPU only, records loads and can simulate Cancel."""

from __future__ import annotations

import torch

OOM_EXCEPTION = torch.cuda.OutOfMemoryError
loaded: list = []
interrupt_processing = False


class InterruptProcessingException(Exception):
    pass


def get_torch_device() -> torch.device:
    return torch.device("cpu")


def unet_offload_device() -> torch.device:
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    return torch.device("cpu")


def load_models_gpu(models: list, memory_required: int = 0, force_patch_weights: bool = False,
                    minimum_memory_required: int | None = None, force_full_load: bool = False) -> None:  # fmt: skip
    for patcher in models:
        patcher.model.to(patcher.load_device)
        loaded.append(patcher)


def throw_exception_if_processing_interrupted() -> None:
    global interrupt_processing
    if interrupt_processing:
        interrupt_processing = False
        raise InterruptProcessingException()


def soft_empty_cache(force: bool = False) -> None:
    """Nothing to free on the CPU."""

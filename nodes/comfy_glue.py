"""Glue between the engine and ComfyUI: model folders, ModelPatcher, progress, Cancel, IMAGE tensors."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import folder_paths
import numpy as np
import torch
from comfy import model_management
from comfy.model_patcher import ModelPatcher
from comfy.utils import ProgressBar

from ..lipsync.errors import CorruptWeightsError, WeightsNotFoundError, load_failure_reason
from ..lipsync.models.checkpoint import READ_ERRORS, unwrap_state_dict
from ..lipsync.models.registry import ModelDescriptor, load_state_dict_model
from ..lipsync.weights.registry import download_hint, empty_folder_placeholder, find_entry, suggested_file

logger = logging.getLogger(__name__)

# ComfyUI model folder name -> default sub-folder of ComfyUI/models.
MODEL_FOLDERS = {"wav2lip": "wav2lip", "facedetection": "facedetection", "syncnet": "syncnet", "facerestore_models": "facerestore_models"}
WEIGHT_EXTENSIONS = folder_paths.supported_pt_extensions | {".model"}


def register_model_folders() -> None:
    """Add our folders beside any the user configured (extra_model_paths.yaml entries stay first)."""
    for name, sub_folder in MODEL_FOLDERS.items():
        known = name in folder_paths.folder_names_and_paths
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, sub_folder))
        if not known:
            paths, _ = folder_paths.folder_names_and_paths[name]
            folder_paths.folder_names_and_paths[name] = (paths, set(WEIGHT_EXTENSIONS))


def model_files(folder: str) -> list[str]:
    """Files of a model folder for a dropdown; never empty (an empty folder shows how to fill it), so the node still loads."""
    return folder_paths.get_filename_list(folder) or [empty_folder_placeholder(folder)]


def load_weights(folder: str, filename: str, purpose: str) -> ModelDescriptor:
    """Find ``filename`` in a model folder and build the model it holds, checking what it is for."""
    path, state = read_weights(folder, filename)
    return load_state_dict_model(state, expected_purpose=purpose, source=os.path.basename(path))


def find_weights(folder: str, filename: str) -> str:
    """The full path of ``filename`` in a model folder.

    A missing file (or the empty-folder placeholder) raises an error naming the file, the folder and
    the ``python -m lipsync weights download`` command that fetches it into that folder.
    """
    if filename == empty_folder_placeholder(folder):
        filename = suggested_file(folder) or filename
    path = folder_paths.get_full_path(folder, filename)
    if path is None:
        folders = folder_paths.get_folder_paths(folder) or [os.path.join(folder_paths.models_dir, MODEL_FOLDERS.get(folder, folder))]
        raise WeightsNotFoundError(filename, folders, hint=download_hint(filename, folders[0], folder=folder))
    return path


def check_model_name(folder: str, filename: str | None) -> bool | str:
    """A loader's ``validate_inputs``: True when ``filename`` is in the folder, else the error text.

    ComfyUI calls it when a prompt is queued, so a missing or stale name (or the empty-folder
    placeholder) is refused with the download command before any node of the graph runs. ``None``
    means the name comes from a link, which is only known at run time.
    """
    if filename is None:
        return True
    try:
        find_weights(folder, filename)
    except WeightsNotFoundError as error:
        return str(error)
    return True


def read_weights(folder: str, filename: str) -> tuple[str, dict]:
    """The path and state dict of ``filename`` in a model folder, read safely (no pickled code).

    A missing file (or the empty-folder placeholder) raises an error naming the file, the folder and
    the ``python -m lipsync weights download`` command that fetches it into that folder.
    """
    path = find_weights(folder, filename)
    entry = find_entry(filename)
    if entry is not None and entry.size is not None and os.path.getsize(path) != entry.size:
        logger.warning(
            "%s is %d bytes, not the published %d: it may be damaged or a re-saved copy", path, os.path.getsize(path), entry.size
        )
    from comfy.utils import load_torch_file

    try:
        raw = load_torch_file(path, safe_load=True)
    except READ_ERRORS as error:  # never pass on torch's advice to load the file unsafely
        raise CorruptWeightsError(Path(path), load_failure_reason(error)) from error
    return path, unwrap_state_dict(raw, path)


def patch(model: torch.nn.Module) -> ModelPatcher:
    """Wrap a model so ComfyUI moves it to the GPU and offloads it when diffusion models need room."""
    return ModelPatcher(model, load_device=model_management.get_torch_device(), offload_device=model_management.unet_offload_device())


def load_to_device(patcher: ModelPatcher) -> torch.device:
    """Load the model fully onto its device (freeing others as needed) and return that device."""
    model_management.load_models_gpu([patcher], force_full_load=True)
    return patcher.load_device


class Progress:
    """ComfyUI progress bar over ``total`` items; each update is also where Cancel takes effect."""

    def __init__(self, total: int) -> None:
        self.bar = ProgressBar(total)
        self.done = 0

    def advance(self, count: int) -> None:
        model_management.throw_exception_if_processing_interrupted()
        self.done += count
        self.bar.update_absolute(self.done)


def chunks(total: int, size: int) -> Iterator[range]:
    """Consecutive index ranges of at most ``size`` covering ``range(total)``."""
    for start in range(0, total, max(1, size)):
        yield range(start, min(total, start + max(1, size)))


def image_array(images: torch.Tensor) -> np.ndarray:
    """An IMAGE ``[B, H, W, C]`` as float32 numpy without copying CPU tensors (read-only use)."""
    if images.ndim != 4 or images.shape[-1] < 3:
        raise ValueError(f"expected an IMAGE batch [frames, height, width, 3], got shape {tuple(images.shape)}")
    array = images[..., :3].detach().to("cpu", torch.float32).numpy()
    return array


def image_tensor(images: torch.Tensor) -> torch.Tensor:
    """An IMAGE ``[B, H, W, C]``'s RGB as float32, without copying float32 input (read-only use)."""
    if images.ndim != 4 or images.shape[-1] < 3:
        raise ValueError(f"expected an IMAGE batch [frames, height, width, 3], got shape {tuple(images.shape)}")
    return images[..., :3].detach().to(torch.float32)


def output_image(images: torch.Tensor, sources: tuple[int, ...]) -> torch.Tensor:
    """A new float32 IMAGE whose frame ``i`` is ``images[sources[i]]``: the one copy a node writes its faces into,
    so the input is never modified (ComfyUI's contract) and nothing else of the batch is copied."""
    rgb = image_tensor(images)
    output = torch.empty((len(sources), *rgb.shape[1:]), dtype=torch.float32, device=rgb.device)
    if tuple(sources) == tuple(range(rgb.shape[0])):
        output.copy_(rgb)
    else:
        for index, source in enumerate(sources):
            output[index].copy_(rgb[source])
    return output



"""Fake of ComfyUI's ``folder_paths``: model folders under a temporary models directory."""

from __future__ import annotations

import os
import tempfile

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
models_dir = os.environ.get("FAKE_COMFY_MODELS", tempfile.mkdtemp(prefix="fake-comfy-models-"))
temp_directory = os.environ.get("FAKE_COMFY_TEMP", tempfile.mkdtemp(prefix="fake-comfy-temp-"))
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {
    "upscale_models": ([os.path.join(models_dir, "upscale_models")], supported_pt_extensions),
}


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    if folder_name in folder_names_and_paths:
        paths, _ = folder_names_and_paths[folder_name]
        if full_folder_path not in paths:
            paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)
    else:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())


def get_folder_paths(folder_name: str) -> list[str]:
    return folder_names_and_paths[folder_name][0][:]


def get_filename_list(folder_name: str) -> list[str]:
    if folder_name not in folder_names_and_paths:
        return []
    paths, extensions = folder_names_and_paths[folder_name]
    names = set()
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                for name in files:
                    if not extensions or os.path.splitext(name)[1].lower() in extensions:
                        names.add(os.path.relpath(os.path.join(root, name), path))
    return sorted(names)


def get_full_path(folder_name: str, filename: str) -> str | None:
    if folder_name not in folder_names_and_paths:
        return None
    for path in folder_names_and_paths[folder_name][0]:
        full = os.path.join(path, filename)
        if os.path.isfile(full):
            return full
    return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    full = get_full_path(folder_name, filename)
    if full is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return full


def get_temp_directory() -> str:
    return temp_directory

"""Read model weight files safely: ``.pth``/``.pt``/``.model`` via ``torch.load(weights_only=True)``
or ``.safetensors``; never unpickle arbitrary objects."""

from __future__ import annotations

import logging
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError

from ..errors import CorruptWeightsError, WeightsNotFoundError, WeightsPathError, load_failure_reason

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

WRAPPER_KEYS = ("state_dict", "model", "params_ema", "params")
DATA_PARALLEL_PREFIX = "module."
# What the weights-only unpickler (besides UnpicklingError) and safetensors raise on random or cut-off bytes.
GARBAGE_ERRORS = (IndexError, KeyError, TypeError, AttributeError, struct.error, SafetensorError)
# Everything a read of a damaged, foreign or refused file raises.
READ_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, *GARBAGE_ERRORS)


def read_state_dict(path: str | Path, folder_hint: str | None = None) -> StateDict:
    """Load the tensors of a checkpoint file, unwrapped to a flat ``{name: tensor}`` dict on the CPU.

    Accepts the published ``{"state_dict": {"module.<key>": tensor}}`` layout, a bare state dict,
    or a ``.safetensors`` file. ``folder_hint`` names where a missing file belongs, for the error
    (which also gives the command that downloads a known file into ``path``'s folder).
    """
    from ..weights.registry import download_hint

    path = Path(path)
    if path.is_dir():
        raise WeightsPathError(path)
    if not path.is_file():
        where = f"In ComfyUI it belongs in {folder_hint}. " if folder_hint else ""
        raise WeightsNotFoundError(str(path), [path.parent], hint=where + download_hint(path.name, path.parent.absolute()))
    try:
        if path.suffix.lower() in (".safetensors", ".sft"):
            from safetensors.torch import load_file

            raw: object = load_file(str(path), device="cpu")
        else:
            # Zip-format files are memory-mapped, so their tensors are not copied into RAM twice;
            # the legacy format (the published wav2lip.pth was saved by torch 1.1) cannot be mapped.
            mmap = zipfile.is_zipfile(path)
            raw = torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except READ_ERRORS as exc:
        raise CorruptWeightsError(path, load_failure_reason(exc), hint=_again(path)) from exc
    return unwrap_state_dict(raw, path)


def _again(path: Path) -> str:
    """The command that fetches a good copy of a known file into its folder ('' for other files)."""
    from ..weights.registry import download_hint, find_entry

    return download_hint(path.name, path.parent) if find_entry(path.name) else ""


def unwrap_state_dict(raw: object, source: str | Path = "<memory>") -> StateDict:
    """Find the tensor dict inside a checkpoint object and strip the DataParallel ``module.`` prefix."""
    state = raw
    while isinstance(state, Mapping) and not _is_tensor_dict(state):
        inner = next((state[key] for key in WRAPPER_KEYS if key in state and isinstance(state[key], Mapping)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, Mapping) or not _is_tensor_dict(state) or not state:
        raise CorruptWeightsError(Path(str(source)), "it holds no state dict of tensors", hint=_again(Path(str(source))))
    return {_strip_prefix(key): value for key, value in state.items() if isinstance(value, torch.Tensor)}


def save_checkpoint(state_dict: Mapping[str, torch.Tensor], path: str | Path, extra: Mapping[str, object] | None = None) -> None:
    """Save in the published layout (``{"state_dict": {"module.<key>": ...}}``) or as safetensors by suffix."""
    path = Path(path)
    tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        metadata = {key: str(value) for key, value in (extra or {}).items()}
        save_file(tensors, str(path), metadata=metadata)
        return
    payload: dict[str, object] = {"state_dict": {DATA_PARALLEL_PREFIX + key: value for key, value in tensors.items()}}
    payload.update(extra or {})
    torch.save(payload, str(path))


def _is_tensor_dict(state: Mapping) -> bool:
    tensors = sum(isinstance(value, torch.Tensor) for value in state.values())
    return tensors > 0 and tensors >= len(state) // 2


def _strip_prefix(key: str) -> str:
    return key[len(DATA_PARALLEL_PREFIX) :] if key.startswith(DATA_PARALLEL_PREFIX) else key

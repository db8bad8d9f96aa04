"""Convert a ``.pth`` checkpoint to ``.safetensors``: tensors only, loads without unpickling, often smaller.

The published Wav2Lip checkpoints also hold the optimizer state; only the model's tensors are kept
(unwrapped and without the DataParallel ``module.`` prefix), which every loader here accepts.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError

from ..errors import LipSyncError, OutputError, UnsupportedModelError
from ..models.checkpoint import read_state_dict
from ..models.registry import detect_architecture

logger = logging.getLogger(__name__)


def convert_to_safetensors(source: str | os.PathLike, output: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Write the tensors of ``source`` to ``output`` (default: beside it, ``.safetensors``) and return its path.

    The file is written under a temporary name, read back and compared tensor by tensor, and only
    then renamed into place; an existing output is replaced only with ``overwrite``.
    """
    from safetensors.torch import load_file, save_file

    source = Path(source)
    target = Path(output) if output is not None else source.with_suffix(".safetensors")
    if target.suffix.lower() != ".safetensors":
        raise LipSyncError(f"The output must end in .safetensors, got '{target.name}'.")
    if target.is_dir():
        example = target / source.with_suffix(".safetensors").name
        raise OutputError(f"'{target}' is a folder; give the output file's name, e.g. '{example}'.")
    if target.resolve() == source.resolve():
        raise LipSyncError(f"'{source}' is already the output file; choose another name with -o.")
    if target.exists() and not overwrite:
        raise LipSyncError(f"'{target}' already exists; pass --overwrite to replace it.")
    state = read_state_dict(source)
    tensors = _unshared(state)
    metadata = {"format": "pt", "source": source.name}
    try:
        metadata["architecture"] = detect_architecture(state).name
    except UnsupportedModelError:
        pass  # other models (face restorers...) convert just as well
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(temporary), metadata=metadata)
        # safetensors creates its file private (0600); give it the mode any new file gets here, so another
        # user (ComfyUI run as a service) can read it as it reads the .pth beside it
        os.chmod(temporary, _new_file_mode(target.parent))
        _check_round_trip(tensors, load_file(str(temporary)), target)
        os.replace(temporary, target)
    except (OSError, SafetensorError) as error:
        raise OutputError(f"Cannot write '{target}': {error}. Check that the folder is writable and has room.") from error
    finally:
        temporary.unlink(missing_ok=True)
    logger.info(
        "wrote %s: %d tensors, %.1f MB (from %.1f MB)", target, len(tensors), target.stat().st_size / 1e6, source.stat().st_size / 1e6
    )
    return target


def _new_file_mode(folder: Path) -> int:
    """The permission bits a new file gets in ``folder`` under the current umask (read without changing it)."""
    probe = folder / f".mode-probe-{uuid.uuid4().hex[:8]}"
    handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        return stat.S_IMODE(os.fstat(handle).st_mode)
    finally:
        os.close(handle)
        probe.unlink(missing_ok=True)


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, copying any that share memory with an earlier one (safetensors refuses shared storage)."""
    seen: set[tuple[int, int]] = set()
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        tensor = value.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage()
        identity = (storage.data_ptr(), storage.nbytes())
        if identity in seen or tensor.numel() * tensor.element_size() != storage.nbytes():
            tensor = tensor.clone()
        seen.add((tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes()))
        tensors[key] = tensor
    return tensors


def _check_round_trip(written: dict[str, torch.Tensor], read: dict[str, torch.Tensor], target: Path) -> None:
    if set(written) != set(read):
        raise LipSyncError(f"Conversion to '{target}' lost tensors; nothing was written.")
    for key, tensor in written.items():
        if read[key].dtype != tensor.dtype or read[key].shape != tensor.shape or not _same_bytes(read[key], tensor):
            raise LipSyncError(f"Conversion to '{target}' changed tensor '{key}'; nothing was written.")


def _same_bytes(first: torch.Tensor, second: torch.Tensor) -> bool:
    """Bit-exact equality (NaNs included), which ``torch.equal`` does not give."""
    return torch.equal(first.reshape(-1).view(torch.uint8), second.reshape(-1).view(torch.uint8))

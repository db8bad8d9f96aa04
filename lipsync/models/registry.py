"""Tell which model a weight file holds from its keys, then build it (spandrel's detect/load pattern)."""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import UnsupportedModelError
from .checkpoint import StateDict, read_state_dict
from .gpen import build as _build_gpen
from .gpen import detect as _detect_gpen

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelDescriptor:
    """A loaded model and what it is for."""

    architecture: str
    purpose: str
    model: nn.Module
    input_size: int


@dataclass(frozen=True)
class Architecture:
    """How to recognise one architecture's state dict and how to build a model from it.

    ``input_size`` is the default face size; a built model with an ``img_size`` attribute overrides it
    (Wav2Lip and SyncNet at 192/288 read their size from the state dict).
    """

    name: str
    purpose: str
    detect: Callable[[StateDict], bool]
    build: Callable[[StateDict], nn.Module]
    input_size: int


def _has(state: StateDict, key: str, shape: tuple[int, ...] | None = None) -> bool:
    return key in state and (shape is None or tuple(state[key].shape) == shape)


def _detect_wav2lip(state: StateDict) -> bool:
    return (
        _has(state, "face_encoder_blocks.0.0.conv_block.0.weight", (16, 6, 7, 7))
        and _has(state, "audio_encoder.0.conv_block.0.weight", (32, 1, 3, 3))
        and _has(state, "output_block.1.weight", (3, 32, 1, 1))
    )


def _detect_syncnet_color(state: StateDict) -> bool:
    return _has(state, "face_encoder.0.conv_block.0.weight", (32, 15, 7, 7)) and _has(
        state, "audio_encoder.0.conv_block.0.weight", (32, 1, 3, 3)
    )


def _detect_syncnet_v2(state: StateDict) -> bool:
    return (
        _has(state, "netcnnaud.0.weight", (64, 1, 3, 3))
        and _has(state, "netcnnlip.0.weight", (96, 3, 5, 7, 7))
        and _has(state, "netfcaud.3.weight")
        and _has(state, "netfclip.3.weight")
    )


def _detect_s3fd(state: StateDict) -> bool:
    return all(_has(state, key) for key in ("conv1_1.weight", "conv3_3_norm.weight", "fc7.weight", "conv7_2_mbox_loc.weight"))


def _build_wav2lip(state: StateDict) -> nn.Module:
    from .wav2lip import BASE_SIZE, Wav2Lip, hd_factor

    second_conv = state.get("face_encoder_blocks.1.0.conv_block.0.weight")
    return Wav2Lip(BASE_SIZE * (hd_factor(second_conv) if second_conv is not None else 1))


def _build_syncnet_color(state: StateDict) -> nn.Module:
    from .syncnet import SyncNetColor
    from .wav2lip import BASE_SIZE, hd_factor

    second_conv = state.get("face_encoder.1.conv_block.0.weight")
    return SyncNetColor(BASE_SIZE * (hd_factor(second_conv) if second_conv is not None else 1))


def _build_syncnet_v2(state: StateDict) -> nn.Module:
    from .syncnet_v2 import SyncNetV2

    return SyncNetV2(embedding_size=int(state["netfcaud.3.weight"].shape[0]))


@functools.lru_cache(maxsize=1)
def s3fd_network_class() -> type[nn.Module]:
    """face-alignment's S3FD network class, read from its one module file (which imports only torch).

    Importing it through the ``face_alignment`` package would run the package's ``__init__``, which loads numba,
    SciPy and scikit-image: about a second of start-up, and numba's JIT, for a network that needs none of them.
    Should the file move in a later face-alignment, the package import is the fallback.
    """
    package = importlib.util.find_spec("face_alignment")
    locations = package.submodule_search_locations if package is not None else None
    path = Path(locations[0]) / "detection" / "sfd" / "net_s3fd.py" if locations else None
    if path is None or not path.is_file():
        from face_alignment.detection.sfd.net_s3fd import s3fd

        return s3fd
    spec = importlib.util.spec_from_file_location("face_alignment.detection.sfd.net_s3fd", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.s3fd


def _build_s3fd(state: StateDict) -> nn.Module:
    return s3fd_network_class()()


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("wav2lip", "generator", _detect_wav2lip, _build_wav2lip, 96),
    Architecture("syncnet_color", "sync_expert", _detect_syncnet_color, _build_syncnet_color, 96),
    Architecture("syncnet_v2", "sync_expert", _detect_syncnet_v2, _build_syncnet_v2, 224),
    Architecture("s3fd", "face_detector", _detect_s3fd, _build_s3fd, 0),
    Architecture("gpen", "face_restorer", _detect_gpen, _build_gpen, 512),
)


def detect_architecture(state: StateDict) -> Architecture:
    """Return the architecture whose key pattern ``state`` matches, or raise ``UnsupportedModelError``."""
    for arch in ARCHITECTURES:
        if arch.detect(state):
            return arch
    sample = ", ".join(sorted(state)[:4])
    known = ", ".join(arch.name for arch in ARCHITECTURES)
    raise UnsupportedModelError(
        f"Unsupported model: its keys ({sample}, ...) match none of the known architectures ({known}). "
        "Check that you picked the right file."
    )


def load_state_dict_model(state: StateDict, expected_purpose: str | None = None, source: str = "<memory>") -> ModelDescriptor:
    """Build the detected architecture from ``state`` and load its weights strictly (in eval mode)."""
    arch = detect_architecture(state)
    if expected_purpose is not None and arch.purpose != expected_purpose:
        raise UnsupportedModelError(
            f"'{source}' holds a {arch.name} model ({arch.purpose.replace('_', ' ')}), "
            f"but a {expected_purpose.replace('_', ' ')} is needed here. Pick another file."
        )
    # Built on the meta device and filled by assignment: no random init, no second copy of the weights.
    with torch.device("meta"):
        model = arch.build(state)
    own_keys = set(model.state_dict())
    state = {key: value for key, value in state.items() if key in own_keys or not key.endswith("num_batches_tracked")}
    for key in own_keys - set(state):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
    missing = own_keys - set(state)
    unexpected = set(state) - own_keys
    if missing or unexpected:
        raise UnsupportedModelError(
            f"'{source}' looks like {arch.name} but does not fit it: "
            f"{len(missing)} missing keys (e.g. {sorted(missing)[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {sorted(unexpected)[:3]}). It may be a different variant."
        )
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise UnsupportedModelError(f"'{source}' looks like {arch.name} but a tensor shape differs: {exc}") from exc
    model.eval()
    logger.debug("loaded %s from %s", arch.name, source)
    return ModelDescriptor(arch.name, arch.purpose, model, int(getattr(model, "img_size", arch.input_size)))


def load_model_file(path: str | Path, expected_purpose: str | None = None, folder_hint: str | None = None) -> ModelDescriptor:
    """Read a weight file and build the model it holds (see ``load_state_dict_model``)."""
    state = read_state_dict(path, folder_hint=folder_hint)
    return load_state_dict_model(state, expected_purpose=expected_purpose, source=str(path))

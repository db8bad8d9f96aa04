"""Load a face restorer and run it on batches of aligned faces (512x512, or the network's own size).

GFPGAN v1.3/v1.4 and RestoreFormer come with spandrel; CodeFormer with ``spandrel_extra_arches`` when it
is installed. The extra architectures go into a private copy of spandrel's registry, never into its
global one, so ComfyUI's own loaders behave as before. GPEN (256/512/1024), which spandrel lacks, is
detected and built by this pack's own registry (``lipsync.models.gpen``) before spandrel is asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..defaults import DEFAULT_RESTORE_BATCH
from ..device import run_with_oom_backoff
from ..errors import UnsupportedModelError
from ..models.checkpoint import StateDict, read_state_dict

logger = logging.getLogger(__name__)

FACE_ARCHITECTURES = ("GFPGAN", "RestoreFormer", "CodeFormer", "GPEN")
CODEFORMER = "CodeFormer"
GFPGAN = "GFPGAN"
GPEN = "GPEN"
RESTORER_PURPOSE = "face_restorer"  # lipsync.models.registry's purpose for GPEN
FOLDER_HINT = "models/facerestore_models"


def codeformer_available() -> bool:
    """True when ``spandrel_extra_arches`` (which holds CodeFormer) can be imported."""
    try:
        import spandrel_extra_arches  # noqa: F401
    except ImportError:
        return False
    return True


def _registry():
    from spandrel import MAIN_REGISTRY

    registry = MAIN_REGISTRY.copy()
    if codeformer_available():
        from spandrel_extra_arches import EXTRA_REGISTRY

        registry.add(*EXTRA_REGISTRY, ignore_duplicates=True)
    return registry


@dataclass(frozen=True)
class RestorerInfo:
    """What a loaded restorer is and which reduced precisions its architecture supports (from spandrel)."""

    architecture: str
    supports_half: bool
    supports_bfloat16: bool
    input_size: int = 512  # the face size the network works at (512, or GPEN's 256/1024)


def describe_own(state: StateDict, source: str = "<memory>") -> tuple[nn.Module, RestorerInfo] | None:
    """A restorer this pack's registry builds (GPEN, strict key and shape check); ``None`` when the registry knows
    nothing of ``state`` (spandrel is asked next). Another of the pack's models is refused by name."""
    from ..models import gpen
    from ..models.registry import detect_architecture, load_state_dict_model

    if gpen.is_discriminator(state):
        raise UnsupportedModelError(
            f"'{source}' holds GPEN's discriminator (a GPEN-BFR-*-D.pth file, used only for training), not the restorer. "
            "Use GPEN-BFR-512.pth (or -256/-1024) instead."
        )
    try:
        arch = detect_architecture(state)
    except UnsupportedModelError:
        return None
    if arch.purpose != RESTORER_PURPOSE:
        raise UnsupportedModelError(
            f"'{source}' holds a {arch.name} model ({arch.purpose.replace('_', ' ')}), not a face restorer. "
            f"Use one of {', '.join(FACE_ARCHITECTURES)}."
        )
    descriptor = load_state_dict_model(state, expected_purpose=RESTORER_PURPOSE, source=source)
    # bf16: mean 0.002, max 0.025 from float32 (0..1 scale; random weights, H200). fp16 was as close on random weights, but
    # the trained weights' activation range is unchecked and StyleGAN2 needs clamping in fp16, so it is not offered.
    return descriptor.model, RestorerInfo(GPEN, supports_half=False, supports_bfloat16=True, input_size=descriptor.input_size)


def describe(state: StateDict, source: str = "<memory>") -> tuple[nn.Module, RestorerInfo]:
    """Detect the architecture of ``state`` (GPEN here, the others with spandrel) and build it; only face restorers are accepted."""
    own = describe_own(state, source)
    if own is not None:
        return own
    from spandrel import ModelLoader
    from spandrel import UnsupportedModelError as SpandrelUnsupported

    try:
        descriptor = ModelLoader(registry=_registry()).load_from_state_dict(state)
    except SpandrelUnsupported as error:
        hint = "" if codeformer_available() else " CodeFormer needs `pip install spandrel_extra_arches`."
        raise UnsupportedModelError(
            f"'{source}' is not a face restorer this pack knows. Use GFPGAN v1.3/v1.4, RestoreFormer, CodeFormer or GPEN-BFR weights.{hint}"
        ) from error
    name = descriptor.architecture.id
    if name not in FACE_ARCHITECTURES:
        raise UnsupportedModelError(
            f"'{source}' holds a {name} model ({descriptor.purpose}), not a face restorer. Use one of {', '.join(FACE_ARCHITECTURES)}."
        )
    hyperparameters = getattr(descriptor.model, "hyperparameters", {})
    size = int(hyperparameters.get("out_size", hyperparameters.get("resolution", 512)))
    info = RestorerInfo(name, bool(descriptor.supports_half), bool(descriptor.supports_bfloat16), size)
    return descriptor.model.eval(), info


def pick_dtype(info: RestorerInfo, device: torch.device) -> torch.dtype:
    """bf16 (or fp16) on CUDA where the architecture supports it; float32 elsewhere."""
    if device.type == "cuda":
        if info.supports_bfloat16 and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if info.supports_half:
            return torch.float16
    return torch.float32


class FaceRestorer:
    """Runs a face restoration network on ``[N, 512, 512, 3]`` RGB faces in 0..1.

    The networks take and give images in -1..1; every architecture is called as its module, so
    CodeFormer gets its fidelity ``weight`` (spandrel's descriptor call would not pass it) and GFPGAN its
    fixed noise.
    """

    def __init__(
        self, model: nn.Module, info: RestorerInfo, device: torch.device | str = "cpu", batch_size: int = DEFAULT_RESTORE_BATCH
    ) -> None:
        self.device = torch.device(device)
        self.info = info
        self.dtype = pick_dtype(info, self.device)
        self.model = model.to(self.device, self.dtype).eval()
        if info.architecture == GFPGAN:
            from .modconv import batch_modulated_convs

            batch_modulated_convs(self.model)  # a shared convolution per batch instead of a grouped one
        self.batch_size = max(1, batch_size)

    @property
    def architecture(self) -> str:
        return self.info.architecture

    @property
    def input_size(self) -> int:
        return self.info.input_size

    @torch.inference_mode()
    def __call__(self, faces: np.ndarray, fidelity: float = 0.5) -> np.ndarray:
        """Restore float RGB faces ``[N, S, S, 3]`` (0..1); ``fidelity`` is CodeFormer's weight (0 = most
        restoration, 1 = closest to the input). Returns float32 ``[N, S, S, 3]`` in 0..1."""
        batch = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32)).to(self.device).permute(0, 3, 1, 2)
        return self.restore_tensor(batch, fidelity).permute(0, 2, 3, 1).cpu().numpy()

    @torch.inference_mode()
    def restore_tensor(self, faces: torch.Tensor, fidelity: float = 0.5) -> torch.Tensor:
        """As ``__call__`` for float ``[N, 3, S, S]`` tensors (0..1) already on the device: float32 ``[N, 3, S, S]``."""

        def run(batch_size: int) -> torch.Tensor:
            outputs = []
            for start in range(0, len(faces), batch_size):
                batch = (faces[start : start + batch_size].to(self.device, self.dtype) * 2.0 - 1.0).contiguous()
                if self.architecture == CODEFORMER:
                    restored = self.model(batch, weight=float(fidelity))[0]
                elif self.architecture == GFPGAN:
                    # The stored noise maps instead of fresh noise per call: the same face gives the same
                    # result in every frame (fresh noise flickers); the intermediate RGBs are not needed.
                    restored = self.model(batch, return_rgb=False, randomize_noise=False)[0]
                else:
                    restored = self.model(batch)[0]
                outputs.append((restored.float().clamp(-1.0, 1.0) + 1.0) / 2.0)
            return torch.cat(outputs)

        return run_with_oom_backoff(run, self.batch_size, what=f"{self.architecture} face restoration")


def restorer_from_state_dict(
    state: StateDict, device: torch.device | str = "cpu", batch_size: int = DEFAULT_RESTORE_BATCH, source: str = "<memory>"
) -> FaceRestorer:
    model, info = describe(state, source)
    return FaceRestorer(model, info, device=device, batch_size=batch_size)


def load_face_restorer(path: str | Path, device: torch.device | str = "cpu", batch_size: int = DEFAULT_RESTORE_BATCH) -> FaceRestorer:
    """Load GFPGANv1.3/1.4.pth, RestoreFormer.pth, codeformer.pth or GPEN-BFR-256/512/1024.pth (or .safetensors copies) safely."""
    state = read_state_dict(path, folder_hint=FOLDER_HINT)
    return restorer_from_state_dict(state, device=device, batch_size=batch_size, source=Path(path).name)

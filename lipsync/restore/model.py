"""Load a face restorer and run it on batches of aligned faces (512x512, or the network's own size).

GFPGAN v1.3/v1.4 and RestoreFormer come with spandrel; CodeFormer with ``spandrel_extra_arches`` when it
is installed. The extra architectures go into a private copy of spandrel's registry, never into its
global one, so ComfyUI's own loaders behave as before. GPEN (256/512/1024), which spandrel lacks, is
detected and built by this pack's own registry (``lipsync.models.gpen``) before spandrel is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..defaults import DEFAULT_RESTORE_BATCH, DEFAULT_RESTORE_COMPILE
from ..device import cpu_has_bf16_matrix_units, is_out_of_memory, run_with_oom_backoff
from ..errors import UnsupportedModelError
from ..models.checkpoint import StateDict, read_state_dict

logger = logging.getLogger(__name__)

FACE_ARCHITECTURES = ("GFPGAN", "RestoreFormer", "CodeFormer", "GPEN")
CODEFORMER = "CodeFormer"
GFPGAN = "GFPGAN"
GPEN = "GPEN"
RESTORER_PURPOSE = "face_restorer"  # lipsync.models.registry's purpose for GPEN
FOLDER_HINT = "models/facerestore_models"
# Faces per network pass on the CPU. One is fastest there: GFPGAN v1.4 at 512 on a 2-core VM took 2.48 s a face one
# at a time, 2.74 in pairs and 4.00 in fours (a face's widest activations, 64 channels at 512x512, are 67 MB: more
# faces a pass only move more memory). A GPU gains from larger batches.
CPU_RESTORE_BATCH = 1


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
    """bf16 where the architecture supports it and the device multiplies bf16 in hardware: CUDA, or a CPU with matrix
    units (Intel AMX); fp16 on CUDA for an architecture that supports only that; float32 elsewhere.

    On an AMX CPU (2-core Sapphire Rapids VM, GFPGAN v1.4 at 512, one face) bf16 took 1.47 s a face against 2.52 in
    float32, and moved the faces by 0.0017 on average, 0.0129 at most (0..1): what bf16 moves them on a GPU (0.0014,
    0.0126), where it is the default too. A CPU without AMX would emulate bf16, slower than float32.
    """
    if device.type == "cuda":
        if info.supports_bfloat16 and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if info.supports_half:
            return torch.float16
    if device.type == "cpu" and info.supports_bfloat16 and cpu_has_bf16_matrix_units():
        return torch.bfloat16
    return torch.float32


def default_restore_batch(device: torch.device | str) -> int:
    """Faces per network pass when none is asked for: ``CPU_RESTORE_BATCH`` on the CPU, ``DEFAULT_RESTORE_BATCH`` else."""
    return CPU_RESTORE_BATCH if torch.device(device).type == "cpu" else DEFAULT_RESTORE_BATCH


# The attribute of a network that holds its torch.compile'd form (None once compiling failed in this process). It is
# kept on the network, not on a FaceRestorer, so the Restore Faces node (a FaceRestorer per run) compiles a loaded
# network once; and not in a table of this module, which would keep every network a ComfyUI server ever unloaded alive
# (the compiled form refers to its network).
_COMPILED = "_lipsync_compiled"


def compiled_network(model: nn.Module) -> Callable | None:
    """``torch.compile(model)``, made once per network; ``None`` once compiling it has failed here."""
    if _COMPILED not in vars(model):
        # object.__setattr__: a plain attribute, not a registered submodule (a module that contains itself)
        object.__setattr__(model, _COMPILED, torch.compile(model))
    return vars(model)[_COMPILED]


def _compiling_failed(model: nn.Module) -> None:
    object.__setattr__(model, _COMPILED, None)


class FaceRestorer:
    """Runs a face restoration network on ``[N, 512, 512, 3]`` RGB faces in 0..1.

    The networks take and give images in -1..1; every architecture is called as its module, so
    CodeFormer gets its fidelity ``weight`` (spandrel's descriptor call would not pass it) and GFPGAN its
    fixed noise.

    ``compile``: run the network through ``torch.compile`` (Inductor). The first batch of each new size compiles
    first: about 80 s for GFPGAN on a 2-core CPU the first time, 5-8 s once Inductor's cache holds it. Then GFPGAN's
    network runs faster on that (AMX) CPU: in bf16 0.40 against 1.3 s a face, in float32 1.72 against 2.29 s (within
    3e-6 of the plain network). Where compiling fails (no C++ compiler, no Triton) the plain network runs, with a
    warning.
    """

    def __init__(
        self,
        model: nn.Module,
        info: RestorerInfo,
        device: torch.device | str = "cpu",
        batch_size: int | None = None,
        compile: bool = DEFAULT_RESTORE_COMPILE,
    ) -> None:
        self.device = torch.device(device)
        self.info = info
        self.dtype = pick_dtype(info, self.device)
        self.model = model.to(self.device, self.dtype).eval()
        if info.architecture == GFPGAN:
            from .modconv import batch_modulated_convs

            batch_modulated_convs(self.model)  # a shared convolution per batch instead of a grouped one
        self.batch_size = max(1, batch_size if batch_size is not None else default_restore_batch(self.device))
        self.compile = compile

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
                outputs.append((self._network_output(batch, fidelity).float().clamp(-1.0, 1.0) + 1.0) / 2.0)
            return torch.cat(outputs)

        return run_with_oom_backoff(run, self.batch_size, what=f"{self.architecture} face restoration")

    def _network_output(self, batch: torch.Tensor, fidelity: float) -> torch.Tensor:
        """The network's restored faces for ``batch`` (-1..1), compiled when asked and possible."""
        if self.compile and _COMPILED not in vars(self.model):
            logger.info("Compiling the %s restorer (torch.compile) before its first faces: a minute or two the first time, "
                        "seconds once Inductor's cache holds it.", self.architecture)  # fmt: skip
        network = compiled_network(self.model) if self.compile else None
        if network is not None:
            try:
                return self._call(network, batch, fidelity)
            except Exception as error:  # a backend that cannot compile here: the plain network runs
                if is_out_of_memory(error):
                    raise  # the batch is halved and tried again (run_with_oom_backoff)
                _compiling_failed(self.model)
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                logger.warning("torch.compile could not compile the %s restorer here (%s); restoring without it.",
                               self.architecture, reason)  # fmt: skip
        return self._call(self.model, batch, fidelity)

    def _call(self, network: Callable, batch: torch.Tensor, fidelity: float) -> torch.Tensor:
        if self.architecture == CODEFORMER:
            return network(batch, weight=float(fidelity))[0]
        if self.architecture == GFPGAN:
            # The stored noise maps instead of fresh noise per call: the same face gives the same
            # result in every frame (fresh noise flickers); the intermediate RGBs are not needed.
            return network(batch, return_rgb=False, randomize_noise=False)[0]
        return network(batch)[0]


def restorer_from_state_dict(
    state: StateDict,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
    source: str = "<memory>",
    compile: bool = DEFAULT_RESTORE_COMPILE,
) -> FaceRestorer:
    model, info = describe(state, source)
    return FaceRestorer(model, info, device=device, batch_size=batch_size, compile=compile)


def load_face_restorer(
    path: str | Path, device: torch.device | str = "cpu", batch_size: int | None = None, compile: bool = DEFAULT_RESTORE_COMPILE
) -> FaceRestorer:
    """Load GFPGANv1.3/1.4.pth, RestoreFormer.pth, codeformer.pth or GPEN-BFR-256/512/1024.pth (or .safetensors copies) safely."""
    state = read_state_dict(path, folder_hint=FOLDER_HINT)
    return restorer_from_state_dict(state, device=device, batch_size=batch_size, source=Path(path).name, compile=compile)
